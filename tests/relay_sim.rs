//! The RTSP relay, checked with clients we did not write (ffprobe, ffmpeg,
//! GStreamer's rtspsrc) against cameras from the GStreamer simulator. Needs
//! the `gstreamer` feature and ffmpeg / gst-launch-1.0 on PATH; tests/run.sh
//! installs them and sets CAMGATE_REQUIRE_TOOLS=1, which turns a missing
//! tool into a failure instead of a skip.

#[cfg(not(feature = "gstreamer"))]
#[test]
#[ignore = "needs the gstreamer feature: cargo test --features gstreamer (tests/run.sh builds with all features)"]
fn relay_tests_need_the_gstreamer_feature() {}

#[cfg(feature = "gstreamer")]
mod relay {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::process::{Command, Stdio};
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    use tokio_util::sync::CancellationToken;

    use camgate::catalogue::{PullMode, Transport};
    use camgate::health::State;
    use camgate::pull::rtsp::RtspSource;
    use camgate::pull::{PullConfig, PullManager, PullOptions, PullTarget};
    use camgate::relay::rtsp::{RtspCounters, RtspOptions, RtspServer};
    use camgate::simulator::{SimAudio, SimCodec, SimOptions, Simulator};

    /// Whether `tool` runs; without it the test skips loudly, or fails
    /// when CAMGATE_REQUIRE_TOOLS=1.
    fn have(tool: &str) -> bool {
        let ok = Command::new(tool)
            .arg(if tool == "gst-launch-1.0" {
                "--version"
            } else {
                "-version"
            })
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                std::env::var_os("CAMGATE_REQUIRE_TOOLS").is_none(),
                "{tool} is required (CAMGATE_REQUIRE_TOOLS=1)"
            );
            eprintln!("SKIPPED: {tool} is not installed (tests/run.sh installs it)");
        }
        ok
    }

    /// One simulator-backed relay at a time in this binary: parallel ones
    /// share two cores with their encoders and ffmpeg clients, and a
    /// simulator starved of CPU delivered no first frame within 10 s.
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    struct Relay {
        _turn: tokio::sync::MutexGuard<'static, ()>,
        sim: Simulator,
        counters: Arc<RtspCounters>,
        pulls: Arc<PullManager>,
        port: u16,
        cancel: CancellationToken,
    }

    impl Relay {
        fn url(&self, id: &str) -> String {
            format!("rtsp://127.0.0.1:{}/cam/{id}", self.port)
        }
    }

    /// A simulator, a pull manager with camera `c` (always), and the RTSP
    /// server on a free port.
    async fn relay(sim_opts: SimOptions, pull: PullOptions, rtsp: RtspOptions) -> Relay {
        relay_mode(sim_opts, pull, rtsp, PullMode::Always).await
    }

    async fn relay_mode(
        sim_opts: SimOptions,
        pull: PullOptions,
        rtsp: RtspOptions,
        mode: PullMode,
    ) -> Relay {
        let turn = TURN.lock().await;
        let sim = Simulator::start(sim_opts).unwrap();
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        std::mem::forget(_rx);
        let cancel = CancellationToken::new();
        let pulls = PullManager::new(Arc::new(RtspSource::default()), pull, cancel.clone(), tx);
        pulls.upsert(PullConfig {
            id: "c".into(),
            target: PullTarget {
                url: sim.url(0),
                username: None,
                password: None,
                transport: Transport::Tcp,
            },
            pull_mode: mode,
            enabled: true,
            district_code: "620602".into(),
            name: "凉州区东大街路口".into(),
            checkpoint_id: None,
            point_type: 1,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let counters = Arc::new(RtspCounters::default());
        let server = RtspServer::new(pulls.clone(), rtsp, counters.clone(), None);
        tokio::spawn(server.serve(listener, cancel.clone()));
        let rt = pulls.runtime("c").unwrap();
        let start = Instant::now();
        while mode == PullMode::Always
            && rt.state() != State::Online
            && start.elapsed() < Duration::from_secs(10)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if mode == PullMode::Always {
            assert_eq!(rt.state(), State::Online, "{:?}", rt.snapshot());
        }
        Relay {
            _turn: turn,
            sim,
            counters,
            pulls,
            port,
            cancel,
        }
    }

    fn no_spread() -> PullOptions {
        PullOptions {
            start_spread: Duration::ZERO,
            ..Default::default()
        }
    }

    /// Decodes `file` with `ffmpeg -v error -f null`, which must succeed;
    /// what it printed (empty when the file decodes cleanly).
    async fn decode_errors(file: &std::path::Path) -> String {
        let out = run(Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(file)
            .args(["-f", "null", "-"]))
        .await;
        assert!(out.status.success(), "ffmpeg could not decode {file:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `ffmpeg` copying `secs` seconds of `url` over `transport` (tcp or
    /// udp), the video track only when `video_only`, to `output` (a file, or
    /// `-f FORMAT -`). It must succeed; its output.
    async fn ffmpeg_copy(
        url: &str,
        transport: &str,
        video_only: bool,
        secs: u32,
        output: &[&str],
    ) -> std::process::Output {
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-v", "error", "-rtsp_transport", transport, "-i", url]);
        if video_only {
            cmd.args(["-map", "0:v"]);
        }
        cmd.args(["-c", "copy", "-t", &secs.to_string()])
            .args(output);
        run(&mut cmd).await
    }

    fn assert_ran(out: &std::process::Output) {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    async fn run(cmd: &mut Command) -> std::process::Output {
        let mut cmd = tokio::process::Command::from(std::mem::replace(cmd, Command::new("true")));
        cmd.kill_on_drop(true);
        tokio::time::timeout(Duration::from_secs(60), cmd.output())
            .await
            .expect("the client finished within 60 s")
            .expect("the client ran")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ffprobe_ffmpeg_and_rtspsrc_play_the_relay() {
        if !have("ffprobe") || !have("ffmpeg") || !have("gst-launch-1.0") {
            return;
        }
        let r = relay(
            SimOptions {
                cameras: 1,
                audio: SimAudio::Pcma,
                ..Default::default()
            },
            no_spread(),
            RtspOptions::default(),
        )
        .await;
        let url = r.url("c");

        // ffprobe reads codec, resolution and frame rate.
        let out = run(Command::new("ffprobe").args([
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            "-show_entries",
            "stream=codec_type,codec_name,width,height,r_frame_rate",
            "-of",
            "json",
            &url,
        ]))
        .await;
        assert_ran(&out);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let streams = v["streams"].as_array().unwrap();
        let video = streams
            .iter()
            .find(|s| s["codec_type"] == "video")
            .expect("a video stream");
        assert_eq!(video["codec_name"], "h264");
        assert_eq!(
            (video["width"].as_u64(), video["height"].as_u64()),
            (Some(640), Some(360))
        );
        assert_eq!(video["r_frame_rate"], "25/1", "{v}");
        let audio = streams
            .iter()
            .find(|s| s["codec_type"] == "audio")
            .expect("the audio track");
        assert_eq!(audio["codec_name"], "pcm_alaw");

        // ffmpeg copies 10 s; the file decodes with no errors.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("copy.mkv");
        let out = ffmpeg_copy(&url, "tcp", false, 10, &[file.to_str().unwrap()]).await;
        assert_ran(&out);
        assert_eq!(
            decode_errors(&file).await,
            "",
            "decoding the copy reports no errors"
        );
        let out = run(Command::new("ffprobe").args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
            file.to_str().unwrap(),
        ]))
        .await;
        let frames: u64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
        assert!(
            (225..=275).contains(&frames),
            "10 s at 25 fps, got {frames} frames"
        );

        // GStreamer's rtspsrc plays and decodes 50 frames.
        let out = run(Command::new("gst-launch-1.0").args([
            "-q",
            "rtspsrc",
            &format!("location={url}"),
            "protocols=tcp",
            "!",
            "rtph264depay",
            "!",
            "h264parse",
            "!",
            "avdec_h264",
            "!",
            "identity",
            "eos-after=50",
            "!",
            "fakesink",
        ]))
        .await;
        assert!(
            out.status.success(),
            "rtspsrc: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        // One upstream session for all of it.
        assert_eq!(r.sim.connections(), 1, "the camera was pulled once");
        // Live frames had their time inside the gateway measured (the
        // figures themselves are the relay bench's).
        let (_, _, delays) = r.counters.delay.snapshot();
        assert!(delays > 100, "{delays} frames' delays measured");
        assert!(r.counters.bytes_out.load(Ordering::Relaxed) > 100_000);
        r.cancel.cancel();
        r.pulls.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_on_demand_h265_camera_is_pulled_for_its_viewer() {
        if !have("ffprobe") || !have("ffmpeg") {
            return;
        }
        let r = relay_mode(
            SimOptions {
                cameras: 1,
                codec: SimCodec::H265,
                width: 320,
                height: 180,
                fps: 15,
                gop_frames: 15,
                ..Default::default()
            },
            PullOptions {
                start_spread: Duration::ZERO,
                idle_close: Duration::from_secs(1),
                ..Default::default()
            },
            RtspOptions::default(),
            PullMode::OnDemand,
        )
        .await;
        assert!(!r.pulls.is_pulling("c"), "not pulled before anyone asks");
        let url = r.url("c");
        let out = run(Command::new("ffprobe").args([
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "csv=p=0",
            &url,
        ]))
        .await;
        assert_ran(&out);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hevc,320,180");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("copy.mkv");
        let out = ffmpeg_copy(&url, "tcp", false, 4, &[file.to_str().unwrap()]).await;
        assert_ran(&out);
        assert_eq!(
            decode_errors(&file).await,
            "",
            "the H.265 copy decodes with no errors"
        );
        // The pull idles out after the last viewer left.
        let start = Instant::now();
        while r.pulls.is_pulling("c") && start.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            !r.pulls.is_pulling("c"),
            "idle-closed after the viewer left"
        );
        r.cancel.cancel();
        r.pulls.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn udp_unicast_viewers_are_served() {
        if !have("ffmpeg") {
            return;
        }
        let r = relay(
            SimOptions {
                cameras: 1,
                gop_frames: 25,
                ..Default::default()
            },
            no_spread(),
            // Shorter than the 5 s copy: ffmpeg's RTCP receiver reports
            // and keep-alives hold the session open.
            RtspOptions {
                session_timeout: Duration::from_secs(2),
                ..Default::default()
            },
        )
        .await;
        let url = r.url("c");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("udp.mkv");
        let out = ffmpeg_copy(&url, "udp", true, 5, &[file.to_str().unwrap()]).await;
        assert_ran(&out);
        let out = run(Command::new("ffprobe").args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-count_frames",
            "-show_entries",
            "stream=codec_name,nb_read_frames",
            "-of",
            "csv=p=0",
            file.to_str().unwrap(),
        ]))
        .await;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let (codec, frames) = text.split_once(',').unwrap_or(("", "0"));
        assert_eq!(codec, "h264", "{text}");
        let frames: u32 = frames.parse().unwrap_or(0);
        assert!(frames >= 110, "about 5 s at 25 fps over UDP: {frames}");
        assert_eq!(
            decode_errors(&file).await,
            "",
            "the UDP copy decodes with no errors"
        );
        r.cancel.cancel();
        r.pulls.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fifty_viewers_share_one_upstream_session() {
        if !have("ffmpeg") {
            return;
        }
        let r = relay(
            SimOptions {
                cameras: 1,
                ..Default::default()
            },
            no_spread(),
            RtspOptions::default(),
        )
        .await;
        let url = r.url("c");
        let viewers: Vec<_> = (0..50)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move {
                    ffmpeg_copy(&url, "tcp", true, 4, &["-f", "null", "-"]).await
                })
            })
            .collect();
        let mut ok = 0;
        for v in viewers {
            let out = v.await.unwrap();
            if out.status.success() {
                ok += 1;
            } else {
                eprintln!("viewer failed: {}", String::from_utf8_lossy(&out.stderr));
            }
        }
        assert_eq!(ok, 50, "every viewer played");
        assert_eq!(
            r.sim.connections(),
            1,
            "exactly one upstream session at the simulator"
        );
        // Metrics: 50 sessions, each with a time to first frame, and no
        // viewer left once they all ended.
        use std::sync::atomic::Ordering::Relaxed;
        assert_eq!(r.counters.sessions.load(Relaxed), 50);
        let (buckets, _, count) = r.counters.first_frame.snapshot();
        assert_eq!(count, 50);
        let within_1s = buckets.iter().find(|(le, _)| *le == 1.0).map_or(0, |b| b.1);
        assert!(
            within_1s >= 45,
            "first frames come from the GOP cache at once: {buckets:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            r.counters.viewers().is_empty(),
            "{:?}",
            r.counters.viewers()
        );
        assert!(r.counters.bytes_out.load(Relaxed) > 50 * 100_000);
        r.cancel.cancel();
        r.pulls.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sessions_time_out_unless_playing_over_tcp() {
        let r = relay(
            SimOptions {
                cameras: 1,
                ..Default::default()
            },
            no_spread(),
            RtspOptions {
                session_timeout: Duration::from_secs(1),
                ..Default::default()
            },
        )
        .await;
        let url = r.url("c");
        let outcome = tokio::task::spawn_blocking(move || {
            let addr = url[7..].split('/').next().unwrap().to_string();
            let connect = || {
                let s = TcpStream::connect(&addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                s
            };
            // Reads until EOF or `limit`: (bytes, closed).
            let drain = |s: &mut TcpStream, limit: Duration| {
                let start = Instant::now();
                let mut buf = vec![0u8; 1 << 16];
                let mut total = 0;
                while start.elapsed() < limit {
                    match s.read(&mut buf) {
                        Ok(0) => return (total, true),
                        Ok(n) => total += n,
                        Err(_) => return (total, true),
                    }
                }
                (total, false)
            };
            let setup = |s: &mut TcpStream, transport: &str| {
                let h = request(s, &format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n"));
                assert!(h.starts_with("RTSP/1.0 200"), "{h}");
                let h = request(
                    s,
                    &format!("SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: {transport}\r\n\r\n"),
                );
                assert!(h.starts_with("RTSP/1.0 200"), "{h}");
                let session = h.lines().find_map(|l| l.strip_prefix("Session: ")).unwrap();
                assert!(session.ends_with(";timeout=1"), "announced: {session}");
                let session = session.split(';').next().unwrap().to_string();
                let h = request(s, &format!("PLAY {url} RTSP/1.0\r\nCSeq: 3\r\nSession: {session}\r\n\r\n"));
                assert!(h.starts_with("RTSP/1.0 200"), "{h}");
            };
            // Described, never played, silent: closed.
            let mut idle = connect();
            let h = request(&mut idle, &format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n"));
            assert!(h.starts_with("RTSP/1.0 200"), "{h}");
            let started = Instant::now();
            let (_, closed) = drain(&mut idle, Duration::from_secs(4));
            let idle_closed_after = started.elapsed();
            assert!(closed, "a silent, never-played session is closed");
            // Playing over UDP without RTCP or requests: closed too.
            let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let port = udp.local_addr().unwrap().port();
            let mut over_udp = connect();
            setup(
                &mut over_udp,
                &format!("RTP/AVP;unicast;client_port={port}-{}", port + 1),
            );
            let (_, closed) = drain(&mut over_udp, Duration::from_secs(4));
            assert!(closed, "a silent UDP session is closed");
            // Playing over TCP: the connection is the session; it keeps
            // streaming well past the timeout.
            let mut over_tcp = connect();
            setup(&mut over_tcp, "RTP/AVP/TCP;unicast;interleaved=0-1");
            let (bytes, closed) = drain(&mut over_tcp, Duration::from_secs(3));
            assert!(!closed && bytes > 10_000, "still playing: {bytes} bytes");
            idle_closed_after
        })
        .await
        .unwrap();
        assert!(
            outcome >= Duration::from_millis(900),
            "not before the timeout: {outcome:?}"
        );
        r.cancel.cancel();
        r.pulls.shutdown().await;
    }

    /// Sends a request on a raw connection and reads the response head.
    fn request(s: &mut TcpStream, req: &str) -> String {
        s.write_all(req.as_bytes()).unwrap();
        let mut buf = Vec::new();
        let mut b = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            if s.read(&mut b).unwrap() == 0 {
                break;
            }
            buf.push(b[0]);
        }
        let head = String::from_utf8_lossy(&buf).to_string();
        if let Some(len) = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|v| v.trim().parse::<usize>().ok())
        {
            let mut body = vec![0; len];
            s.read_exact(&mut body).unwrap();
        }
        head
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_reader_is_dropped_while_another_viewer_keeps_its_rate() {
        if !have("ffmpeg") {
            return;
        }
        let r = relay(
            SimOptions {
                cameras: 1,
                bitrate_kbps: 2000,
                pattern: Some("snow".into()),
                ..Default::default()
            },
            PullOptions {
                start_spread: Duration::ZERO,
                fanout: camgate::fanout::FanoutOptions {
                    queue_frames: 25,
                    lag_limit: Duration::from_secs(2),
                    ..Default::default()
                },
                ..Default::default()
            },
            RtspOptions {
                write_timeout: Duration::from_secs(3),
                ..Default::default()
            },
        )
        .await;
        let url = r.url("c");
        // The stalled reader: plays with a tiny receive buffer, then reads nothing.
        let url2 = url.clone();
        let stalled = tokio::task::spawn_blocking(move || {
            let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            sock.set_recv_buffer_size(4096).unwrap();
            let addr: std::net::SocketAddr = url2[7..].split('/').next().unwrap().parse().unwrap();
            sock.connect(&addr.into()).unwrap();
            let mut s: TcpStream = sock.into();
            let h = request(&mut s, &format!("DESCRIBE {url2} RTSP/1.0\r\nCSeq: 1\r\n\r\n"));
            assert!(h.starts_with("RTSP/1.0 200"), "{h}");
            let h = request(
                &mut s,
                &format!("SETUP {url2}/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"),
            );
            assert!(h.starts_with("RTSP/1.0 200"), "{h}");
            let session = h
                .lines()
                .find_map(|l| l.strip_prefix("Session: "))
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_string();
            let h = request(&mut s, &format!("PLAY {url2} RTSP/1.0\r\nCSeq: 3\r\nSession: {session}\r\n\r\n"));
            assert!(h.starts_with("RTSP/1.0 200"), "{h}");
            s
        })
        .await
        .unwrap();
        // Meanwhile a steady viewer: 8 s of video at the full rate.
        let out = ffmpeg_copy(&url, "tcp", true, 8, &["-f", "framemd5", "-"]).await;
        assert_ran(&out);
        let frames = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .count();
        assert!(
            frames >= 180,
            "the steady viewer kept about 25 fps: {frames} frames in 8 s"
        );
        // The stalled reader has been disconnected: draining it reaches EOF.
        let drained = tokio::task::spawn_blocking(move || {
            let mut s = stalled;
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = vec![0u8; 1 << 16];
            let mut total = 0usize;
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if Instant::now() > deadline {
                    return Err(std::io::Error::other(format!(
                        "still streaming after {total} bytes drained"
                    )));
                }
                match s.read(&mut buf) {
                    Ok(0) => return Ok(total),
                    Ok(n) => total += n,
                    Err(e) => return Err(e),
                }
            }
        })
        .await
        .unwrap();
        assert!(
            drained.is_ok(),
            "the stalled reader's connection was closed: {drained:?}"
        );
        let totals = r.pulls.totals();
        assert!(
            totals.frames_dropped > 0,
            "the stalled reader's frames were skipped"
        );
        let rtsp_dropped = r.counters.frames_dropped.load(Ordering::Relaxed);
        assert!(
            rtsp_dropped > 0 && rtsp_dropped <= totals.frames_dropped,
            "and counted as the RTSP relay's: {rtsp_dropped} of {}",
            totals.frames_dropped
        );
        r.cancel.cancel();
        r.pulls.shutdown().await;
    }
}
