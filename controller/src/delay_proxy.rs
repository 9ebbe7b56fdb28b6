//! `mangrove testbed delay-proxy`: a TCP proxy that holds every byte a fixed time in each
//! direction, for `testbed fault latency` (the kernel here has no netem). It runs inside a
//! host's container, where a redirect rule sends the agent's connections to it.
//!
//! Each direction reads what has arrived, stamps it, and a writer sends it on when its time
//! comes, so throughput is kept and only the delay is added; order is kept because one
//! writer per direction sends in arrival order.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Serves until killed.
pub async fn run(listen: SocketAddr, to: SocketAddr, delay: Duration) -> Result<()> {
    let listener = TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(%listen, %to, delay_ms = delay.as_millis() as u64, "delay proxy listening");
    loop {
        let (client, peer) = listener.accept().await.context("accept")?;
        tokio::spawn(async move {
            if let Err(e) = relay(client, to, delay).await {
                tracing::debug!(%peer, error = format!("{e:#}"), "delayed connection ended");
            }
        });
    }
}

async fn relay(client: TcpStream, to: SocketAddr, delay: Duration) -> Result<()> {
    let upstream = TcpStream::connect(to).await.with_context(|| format!("cannot connect to {to}"))?;
    client.set_nodelay(true)?;
    upstream.set_nodelay(true)?;
    let (cr, cw) = client.into_split();
    let (ur, uw) = upstream.into_split();
    // Whichever direction ends first ends the connection (both halves drop).
    tokio::select! {
        r = one_way(cr, uw, delay) => r,
        r = one_way(ur, cw, delay) => r,
    }
}

async fn one_way(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) -> Result<()> {
    // Bounded: a peer that stops reading slows the reader down instead of growing memory.
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(256);
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            to.write_all(&chunk).await?;
        }
        to.shutdown().await?;
        anyhow::Ok(())
    };
    let reader = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = from.read(&mut buf).await?;
            if n == 0 {
                return anyhow::Ok(());
            }
            if tx.send((Instant::now() + delay, buf[..n].to_vec())).await.is_err() {
                return Ok(());
            }
        }
    };
    let (r, w) = tokio::join!(reader, writer);
    r.and(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bytes_arrive_intact_in_order_and_late() {
        let echo = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let echo_addr = echo.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut s, _) = echo.accept().await.expect("accept");
            let mut buf = vec![0u8; 4096];
            loop {
                let n = s.read(&mut buf).await.expect("read");
                if n == 0 {
                    break;
                }
                s.write_all(&buf[..n]).await.expect("write");
            }
        });
        let probe = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let listen = probe.local_addr().expect("addr");
        drop(probe);
        tokio::spawn(run(listen, echo_addr, Duration::from_millis(150)));
        let mut c = loop {
            if let Ok(c) = TcpStream::connect(listen).await {
                break c;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let msg: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let started = std::time::Instant::now();
        c.write_all(&msg).await.expect("send");
        let mut back = vec![0u8; msg.len()];
        c.read_exact(&mut back).await.expect("echo");
        // Both ways delayed: the round trip takes at least twice the delay.
        assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());
        assert_eq!(back, msg);
    }
}
