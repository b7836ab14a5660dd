//! `swarmplex bench`: connect time, throughput and round trips on a local testnet.

use std::time::{Duration, Instant};

use crate::common::first_connection;
use anyhow::Result;
use swarmplex::{Connection, JoinOptions, Swarm, SwarmOptions, Testnet, Topic};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Topic connects to time.
    #[arg(long, default_value_t = 20)]
    connects: usize,
    /// MiB to send over one stream.
    #[arg(long, default_value_t = 1024)]
    mib: usize,
    /// 1 KiB round trips to time.
    #[arg(long, default_value_t = 1000)]
    round_trips: usize,
    /// Transports to listen on: both (QUIC and TCP), quic, tcp or websocket.
    #[arg(long, default_value = "both")]
    transport: String,
    /// Print one JSON line instead of a table.
    #[arg(long)]
    json: bool,
}

fn listen(transport: &str) -> Result<Vec<String>> {
    Ok(match transport {
        "both" => swarmplex::options::loopback_listen(0),
        "quic" => vec!["/ip4/127.0.0.1/udp/0/quic-v1".into()],
        "tcp" => vec!["/ip4/127.0.0.1/tcp/0".into()],
        "websocket" => vec!["/ip4/127.0.0.1/tcp/0/ws".into()],
        other => anyhow::bail!("--transport must be both, quic, tcp or websocket, not {other}"),
    })
}


async fn connected_pair(net: &Testnet, transport: &str, name: &str) -> Result<(Swarm, Swarm, Connection, Connection, Duration)> {
    let opts = || SwarmOptions { listen: Some(listen(transport).unwrap()), ..SwarmOptions::local(net.bootstrap()) };
    let server = Swarm::new(opts()).await?;
    let client = Swarm::new(opts()).await?;
    let topic = Topic::from_name(name);
    server.join(topic, JoinOptions { server: true, client: false })?.flushed().await?;
    let t = Instant::now();
    client.join(topic, JoinOptions { server: false, client: true })?;
    let (cs, cc) = tokio::try_join!(first_connection(&server), first_connection(&client))?;
    Ok((server, client, cs, cc, t.elapsed()))
}

pub async fn run(a: BenchArgs) -> Result<()> {
    listen(&a.transport)?;
    let net = Testnet::new(3).await?;
    let mut times = Vec::new();
    for i in 0..a.connects {
        let (s, c, _, _, d) = connected_pair(&net, &a.transport, &format!("bench-connect-{i}")).await?;
        times.push(d.as_secs_f64() * 1000.0);
        s.destroy().await;
        c.destroy().await;
    }
    times.sort_by(|x, y| x.partial_cmp(y).unwrap());
    let median_ms = times.get(times.len() / 2).copied().unwrap_or(0.0);

    let (s, c, cs, cc, _) = connected_pair(&net, &a.transport, "bench-stream").await?;
    let block = vec![7u8; 1 << 20];
    let mib = a.mib;
    let out = cc.socket();
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        for _ in 0..mib {
            out.write(&block).await?;
        }
        out.end().await
    });
    let inc = cs.socket();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0usize;
    loop {
        let k = inc.read_into(&mut buf).await?;
        if k == 0 {
            break;
        }
        n += k;
    }
    writer.await??;
    anyhow::ensure!(n == mib << 20, "received {n} bytes, expected {}", mib << 20);
    let mib_s = mib as f64 / start.elapsed().as_secs_f64();

    let (o, t) = tokio::try_join!(cc.create_stream("rtt"), cs.receive_stream("rtt"))?;
    let echo = tokio::spawn(async move {
        let mut buf = vec![0u8; 1024];
        loop {
            let mut got = 0;
            while got < 1024 {
                let k = t.read_into(&mut buf[got..]).await?;
                if k == 0 {
                    return Ok::<(), swarmplex::Error>(());
                }
                got += k;
            }
            t.write(&buf).await?;
        }
    });
    let msg = vec![1u8; 1024];
    let mut back = vec![0u8; 1024];
    let start = Instant::now();
    for _ in 0..a.round_trips {
        o.write(&msg).await?;
        let mut got = 0;
        while got < 1024 {
            got += o.read_into(&mut back[got..]).await?;
        }
    }
    let rtt_us = start.elapsed().as_secs_f64() * 1e6 / a.round_trips.max(1) as f64;
    o.end().await?;
    let _ = echo.await;
    s.destroy().await;
    c.destroy().await;
    net.destroy().await;

    if a.json {
        println!(
            "{{\"transport\":\"{}\",\"connect_ms_median\":{median_ms:.2},\"throughput_mib_s\":{mib_s:.1},\"rtt_us\":{rtt_us:.1}}}",
            a.transport
        );
    } else {
        println!("transport:            {}", a.transport);
        println!("connect (median of {}): {median_ms:.2} ms", a.connects);
        println!("one stream:           {mib_s:.0} MiB/s ({mib} MiB)");
        println!("1 KiB round trip:     {rtt_us:.1} µs (mean of {})", a.round_trips);
    }
    Ok(())
}
