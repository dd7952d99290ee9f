//! `hazingest run`: the tasks of one instance and their orderly stop. On SIGTERM or Ctrl-C
//! nothing new is taken, what is held is written (for a bounded time) and acknowledged,
//! then the session ends; anything unwritten stays with the broker.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::sync::{mpsc, watch, Semaphore};
use tracing::info;

use firmware_config::central::CentralConfig;

use crate::intake::{IntakeRules, RejectCounter};
use crate::ops::{self, Metrics};
use crate::quarantine::Quarantine;
use crate::subscribe::{self, SubscribeContext};
use crate::supervise::Supervision;
use crate::view::{self, View};
use crate::write::{run_batcher, run_writer, BatchLimits, StoreClient};

pub async fn run(config: CentralConfig) -> Result<()> {
    let store = StoreClient::new(&config.store)?;
    let pending_limit = Arc::new(Semaphore::new(config.ingest.max_pending));
    let rejects = Arc::new(RejectCounter::default());
    let quarantine = Arc::new(
        Quarantine::open(
            &config.ingest.quarantine_dir,
            config.ingest.quarantine_max_size,
        )
        .with_context(|| {
            format!(
                "cannot open the quarantine folder {} ([ingest] quarantine_dir)",
                config.ingest.quarantine_dir.display()
            )
        })?,
    );
    let metrics = Arc::new(Metrics::new(
        rejects.clone(),
        quarantine.clone(),
        pending_limit.clone(),
        config.ingest.max_pending,
    ));
    let view = Arc::new(View::default());
    let (supervision, commands) = Supervision::open(&config.supervision, &config.mqtt.prefix)
        .await
        .with_context(|| {
            format!(
                "cannot open the supervision database {} ([supervision] database)",
                crate::supervise::db::redact(&config.supervision.database)
            )
        })?;
    supervision.spawn_resender();
    crate::supervise::statistics::spawn_counter(
        supervision.db.clone(),
        view.clone(),
        store.clone(),
    );
    crate::supervise::point_silence::PointWatch::spawn(
        supervision.db.clone(),
        view.clone(),
        store.clone(),
        config.supervision.point_silence_after,
        config.supervision.interruption_level,
    );
    crate::supervise::interruptions::Watch::spawn(
        supervision.db.clone(),
        view.clone(),
        config.supervision.silence_after,
        config.supervision.interruption_level,
    );
    let notifier = crate::notify::Notifier::new(config.notify.clone())
        .map_err(|e| anyhow::anyhow!("cannot set up notifications: {e}"))?;
    crate::supervise::escalation::Escalator::spawn(supervision.db.clone(), Arc::new(notifier));

    if let Some(web) = &config.web {
        serve(
            "regulator view",
            web.listen,
            view::router(
                view.clone(),
                store.clone(),
                quarantine.clone(),
                supervision.clone(),
                web.cookie_secure,
                Arc::new(config.notify.clone()),
            ),
        )
        .await?;
    }
    if let Some(addr) = config.metrics {
        serve("metrics", addr, ops::router(metrics.clone())).await?;
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let (drained_tx, drained_rx) = watch::channel(false);
    let (pending_tx, pending_rx) = mpsc::channel(1024);
    let (batch_tx, batch_rx) = mpsc::channel(2);
    let limits = BatchLimits {
        lines: config.store.batch_lines,
        interval: config.store.batch_interval,
    };
    let batcher = tokio::spawn(run_batcher(pending_rx, batch_tx, limits));
    let writer = tokio::spawn(run_writer(
        batch_rx,
        store,
        Some(supervision.clone()),
        metrics.clone(),
        stop_rx.clone(),
        drained_tx,
    ));
    let context = SubscribeContext {
        rules: IntakeRules {
            prefix: config.mqtt.prefix.clone(),
            max_message_size: config.ingest.max_message_size,
        },
        mqtt: config.mqtt,
        group: config.ingest.group,
        pending_limit,
        view,
        metrics,
        rejects,
        quarantine,
        supervision: Some(supervision),
    };
    info!(group = %context.group, "hazingest {} starting", env!("CARGO_PKG_VERSION"));
    let session = tokio::spawn(subscribe::run(
        context, pending_tx, stop_rx, drained_rx, commands,
    ));

    shutdown_signal().await;
    info!("stopping: writing what is held, then leaving the broker");
    let _ = stop_tx.send(true);
    let _ = batcher.await;
    let _ = writer.await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), session).await;
    info!("stopped");
    Ok(())
}

async fn serve(what: &str, addr: SocketAddr, router: axum::Router) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for the {what} on {addr}"))?;
    info!("{what} at http://{addr}/");
    // Bounded: at most 128 connections, idle ones closed after 60 s (the view's event
    // stream writes a keep-alive every 15 s, so it stays open).
    tokio::spawn(hazgate_common::serve(
        listener,
        router,
        hazgate_common::HttpLimits::default(),
    ));
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
