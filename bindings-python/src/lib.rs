//! Python binding of swarmplex (work in progress).
