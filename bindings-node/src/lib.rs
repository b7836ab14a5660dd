//! Node.js binding of swarmplex (work in progress).
