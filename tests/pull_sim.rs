//! Pulling from the GStreamer simulator (an RTSP server we did not write)
//! with retina, through the pull manager. Needs the `gstreamer` feature
//! (tests/run.sh builds with all features and installs GStreamer).

#[cfg(not(feature = "gstreamer"))]
#[test]
#[ignore = "needs the gstreamer feature: cargo test --features gstreamer (tests/run.sh builds with all features)"]
fn simulator_tests_need_the_gstreamer_feature() {}

#[cfg(feature = "gstreamer")]
mod sim {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use tokio::sync::mpsc;
    use tokio_util::sync::CancellationToken;

    use camgate::catalogue::{PullMode, Secret, Transport};
    use camgate::health::{Reason, State};
    use camgate::pull::retina_source::RetinaSource;
    use camgate::pull::{PullConfig, PullManager, PullOptions, PullTarget};
    use camgate::simulator::{SimOptions, Simulator};

    fn cfg(id: &str, url: String, mode: PullMode) -> PullConfig {
        PullConfig {
            id: id.into(),
            target: PullTarget {
                url,
                username: None,
                password: None,
                transport: Transport::Tcp,
            },
            pull_mode: mode,
            enabled: true,
            district_code: "620602".into(),
            name: id.to_string(),
            checkpoint_id: None,
        }
    }

    fn manager(
        opts: PullOptions,
    ) -> (
        Arc<PullManager>,
        mpsc::UnboundedReceiver<camgate::health::Transition>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            PullManager::new(Arc::new(RetinaSource), opts, CancellationToken::new(), tx),
            rx,
        )
    }

    /// Polls until `f` holds or `limit` passes; returns the time it took.
    async fn within(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if f() {
                return Some(start.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn always_camera_is_online_at_the_simulators_frame_rate() {
        let sim = Simulator::start(SimOptions {
            cameras: 2,
            fps: 25,
            ..Default::default()
        })
        .unwrap();
        let (m, _rx) = manager(PullOptions {
            start_spread: Duration::ZERO,
            ..Default::default()
        });
        m.upsert(cfg("a", sim.url(0), PullMode::Always));
        let rt = m.runtime("a").unwrap();
        let t = within(Duration::from_secs(5), || rt.state() == State::Online).await;
        assert!(t.is_some(), "online within 5 s; state {:?}", rt.snapshot());
        // Let the frame-rate window fill, then compare with the simulator's 25 fps.
        tokio::time::sleep(Duration::from_secs(4)).await;
        let (state, _, _, stats) = rt.snapshot();
        assert_eq!(state, State::Online);
        assert!(
            (stats.frame_rate - 25.0).abs() <= 2.5,
            "frame rate {} within 10 % of 25",
            stats.frame_rate
        );
        assert_eq!(stats.codec.as_deref(), Some("h264"));
        assert_eq!((stats.width, stats.height), (Some(640), Some(360)));
        assert!(stats.bitrate_bps > 100_000.0, "{}", stats.bitrate_bps);
        m.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failures_are_classified() {
        let sim = Simulator::start(SimOptions {
            cameras: 3,
            ..Default::default()
        })
        .unwrap();
        sim.require_credentials(1, "admin", "S3cr3t-sim").unwrap();
        let (m, _rx) = manager(PullOptions {
            start_spread: Duration::ZERO,
            ..Default::default()
        });
        // A path the server does not serve.
        m.upsert(cfg(
            "nf",
            format!("rtsp://127.0.0.1:{}/cam/99", sim.port()),
            PullMode::Always,
        ));
        // A wrong password.
        let mut c = cfg("auth", sim.url(1), PullMode::Always);
        c.target.username = Some("admin".into());
        c.target.password = Some(Secret::new("wrong"));
        m.upsert(c);
        // A closed port.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        m.upsert(cfg(
            "closed",
            format!("rtsp://127.0.0.1:{closed}/cam/0"),
            PullMode::Always,
        ));
        // The right password works.
        let mut ok = cfg("authok", sim.url(1), PullMode::Always);
        ok.target.username = Some("admin".into());
        ok.target.password = Some(Secret::new("S3cr3t-sim"));
        m.upsert(ok);

        let reason = |id: &str| m.runtime(id).unwrap().snapshot().1;
        assert!(
            within(Duration::from_secs(5), || reason("nf")
                == Some(Reason::NotFound))
            .await
            .is_some(),
            "{:?}",
            m.runtime("nf").unwrap().snapshot()
        );
        assert!(
            within(Duration::from_secs(5), || reason("auth")
                == Some(Reason::AuthFailed))
            .await
            .is_some(),
            "{:?}",
            m.runtime("auth").unwrap().snapshot()
        );
        assert!(
            within(Duration::from_secs(5), || matches!(
                reason("closed"),
                Some(Reason::Refused | Reason::Unreachable)
            ))
            .await
            .is_some(),
            "{:?}",
            m.runtime("closed").unwrap().snapshot()
        );
        let rt = m.runtime("authok").unwrap();
        assert!(
            within(Duration::from_secs(5), || rt.state() == State::Online)
                .await
                .is_some(),
            "{:?}",
            rt.snapshot()
        );
        let err = m
            .runtime("auth")
            .unwrap()
            .snapshot()
            .3
            .last_error
            .unwrap_or_default();
        assert!(!err.contains("S3cr3t") && !err.contains("wrong"), "{err}");
        m.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stalled_and_stopped_mounts_go_offline_and_come_back() {
        let sim = Simulator::start(SimOptions {
            cameras: 2,
            ..Default::default()
        })
        .unwrap();
        let opts = PullOptions {
            start_spread: Duration::ZERO,
            ..Default::default()
        };
        let stall = opts.stall;
        let (m, _rx) = manager(opts);
        m.upsert(cfg("s", sim.url(0), PullMode::Always));
        m.upsert(cfg("x", sim.url(1), PullMode::Always));
        let s = m.runtime("s").unwrap();
        let x = m.runtime("x").unwrap();
        assert!(
            within(Duration::from_secs(5), || s.state() == State::Online
                && x.state() == State::Online)
            .await
            .is_some()
        );

        sim.set_stalled(0, true);
        let t = within(stall + Duration::from_secs(2), || {
            s.snapshot().1 == Some(Reason::Stalled)
        })
        .await;
        assert!(
            t.is_some_and(|t| t <= stall + Duration::from_secs(1)),
            "offline/stalled within stall_secs + 1: {t:?}"
        );
        sim.set_stalled(0, false);
        assert!(
            within(Duration::from_secs(6), || s.state() == State::Online)
                .await
                .is_some(),
            "{:?}",
            s.snapshot()
        );

        sim.stop(1);
        let t = within(stall + Duration::from_secs(2), || {
            x.state() == State::Offline
        })
        .await;
        assert!(
            t.is_some_and(|t| t <= stall + Duration::from_secs(1)),
            "stopped: offline within stall_secs + 1: {t:?}"
        );
        sim.restart(1).unwrap();
        assert!(
            within(Duration::from_secs(10), || x.state() == State::Online)
                .await
                .is_some(),
            "{:?}",
            x.snapshot()
        );
        m.shutdown().await;
    }
}
