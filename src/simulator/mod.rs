//! The camera-fleet simulator (cargo feature `gstreamer`): N RTSP cameras at
//! `rtsp://127.0.0.1:PORT/cam/{i}` served by gst-rtsp-server, an RTSP server
//! we did not write, for tests, the demo and benchmarks.
//!
//! Each distinct stream is encoded once (x264 or x265, one pipeline ending
//! in an appsink) however many mounts and clients there are: every mount's media
//! is an `appsrc` into which the encoder's access units are pushed (shallow
//! buffer copies: the data is shared). Tests can stall a mount (the TCP
//! connection stays open, nothing is sent), stop it (existing clients get
//! nothing, new ones 404) and start it again, and require credentials.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, anyhow};
use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub cameras: usize,
    /// 0 picks a free port.
    pub port: u16,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
    /// Distinct encoded streams the cameras share (round robin).
    pub distinct: usize,
    /// Key frame every this many frames.
    pub gop_frames: u32,
    /// The video codec every camera sends.
    pub codec: SimCodec,
    /// The RTP transports the cameras offer.
    pub transports: SimTransports,
    /// An audio track besides the video, when set.
    pub audio: SimAudio,
    /// videotestsrc pattern of every stream (`snow` fills the bitrate);
    /// by default the distinct streams cycle through ball, smpte, snow and
    /// pinwheel.
    pub pattern: Option<String>,
}

/// The simulated cameras' audio track: a sine tone per media.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SimAudio {
    #[default]
    None,
    /// G.711 A-law, 8 kHz (alawenc, gstreamer1.0-plugins-good).
    Pcma,
    /// AAC-LC, 16 kHz, RFC 3640 (voaacenc, gstreamer1.0-plugins-bad).
    Aac,
}

impl SimAudio {
    /// The encoder pipeline's audio branch, ending in appsink `asink`.
    fn encoder_branch(self) -> &'static str {
        match self {
            SimAudio::None => "",
            SimAudio::Pcma => {
                "audiotestsrc is-live=true wave=sine freq=440 ! audio/x-raw,rate=8000,channels=1 \
                 ! alawenc ! appsink name=asink sync=false max-buffers=16 drop=true"
            }
            SimAudio::Aac => {
                "audiotestsrc is-live=true wave=sine freq=440 ! audio/x-raw,rate=16000,channels=1 \
                 ! voaacenc ! appsink name=asink sync=false max-buffers=16 drop=true"
            }
        }
    }

    /// The media pipeline's audio branch: appsrc `asrc` (its caps are set
    /// from the encoder's on the first push) into payloader `pay1`.
    fn media_branch(self) -> &'static str {
        match self {
            SimAudio::None => "",
            SimAudio::Pcma => {
                "appsrc name=asrc is-live=true format=time do-timestamp=false ! rtppcmapay name=pay1 pt=8"
            }
            SimAudio::Aac => {
                "appsrc name=asrc is-live=true format=time do-timestamp=false ! rtpmp4gpay name=pay1 pt=97"
            }
        }
    }

    /// (element, package) the branch needs.
    fn needs(self) -> Option<(&'static str, &'static str)> {
        match self {
            SimAudio::None => None,
            SimAudio::Pcma => Some(("alawenc", "gstreamer1.0-plugins-good")),
            SimAudio::Aac => Some(("voaacenc", "gstreamer1.0-plugins-bad")),
        }
    }
}

/// Which lower transports the simulated cameras accept in SETUP; a request
/// for another is answered 461 Unsupported Transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SimTransports {
    #[default]
    Any,
    TcpOnly,
    UdpOnly,
}

/// The simulated cameras' video codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SimCodec {
    #[default]
    H264,
    /// x265enc, in gstreamer1.0-plugins-bad. x265 keeps its default open
    /// GOP: key frames after the first are CRA pictures, not IDR, as some
    /// cameras send them, so the gateway's IRAP detection is exercised.
    H265,
}

impl SimCodec {
    /// Parses `h264` or `h265` (also `hevc`).
    pub fn parse(s: &str) -> Option<SimCodec> {
        match s.to_ascii_lowercase().as_str() {
            "h264" | "avc" => Some(SimCodec::H264),
            "h265" | "hevc" => Some(SimCodec::H265),
            _ => None,
        }
    }

    /// (encoder, parser, payloader, caps, the package with the encoder).
    fn elements(
        self,
    ) -> (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
    ) {
        match self {
            SimCodec::H264 => (
                "x264enc",
                "h264parse",
                "rtph264pay",
                "video/x-h264,stream-format=byte-stream,alignment=au",
                "gstreamer1.0-plugins-ugly",
            ),
            SimCodec::H265 => (
                "x265enc",
                "h265parse",
                "rtph265pay",
                "video/x-h265,stream-format=byte-stream,alignment=au",
                "gstreamer1.0-plugins-bad",
            ),
        }
    }
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            cameras: 4,
            port: 0,
            width: 640,
            height: 360,
            fps: 25,
            bitrate_kbps: 1000,
            distinct: 1,
            gop_frames: 50,
            codec: SimCodec::H264,
            transports: SimTransports::Any,
            pattern: None,
            audio: SimAudio::None,
        }
    }
}

#[derive(Default)]
struct Mount {
    /// The appsrcs of this mount's live medias, each with whether it waits
    /// for the encoder's next key frame (it was primed with the last one).
    sources: Vec<Feed>,
    /// The audio appsrcs of this mount's live medias.
    audio_sources: Vec<Feed>,
    stalled: bool,
    stopped: bool,
    /// `user:password` required, if any.
    credentials: Option<(String, String)>,
}

type Mounts = Arc<Mutex<HashMap<usize, Mount>>>;
/// The last key frame (with its parameter sets) of each distinct stream.
type LastKeys = Arc<Mutex<Vec<Option<gst::Buffer>>>>;

/// One media's appsrc, as the encoder feeds it.
struct Feed {
    src: gst_app::AppSrc,
    /// Primed with the last key frame: skip deltas until the next one.
    waiting_key: bool,
    /// The media's running time minus the encoder's, fixed at the first
    /// live buffer, so the media keeps the encoder's even capture spacing
    /// (stamping at push time would copy the scheduling jitter of a busy
    /// machine into the stream, as no camera does).
    offset: Option<i128>,
}

impl Feed {
    fn new(src: gst_app::AppSrc, waiting_key: bool) -> Feed {
        Feed {
            src,
            waiting_key,
            offset: None,
        }
    }

    /// Pushes a shallow copy of an encoded buffer (the data is shared),
    /// stamped in this media's running time.
    fn push(&mut self, buffer: &gst::Buffer) -> bool {
        let pts = buffer.pts().map(|p| p.nseconds() as i128);
        let now = self
            .src
            .current_running_time()
            .map(|t| t.nseconds() as i128);
        if self.offset.is_none()
            && let (Some(p), Some(n)) = (pts, now)
        {
            self.offset = Some(n - p);
        }
        let stamp = match (pts, self.offset) {
            (Some(p), Some(o)) => Some(gst::ClockTime::from_nseconds((p + o).max(0) as u64)),
            // Before the media plays (the primer): its start.
            _ => Some(gst::ClockTime::ZERO),
        };
        let mut b = buffer.copy();
        {
            let b = b.make_mut();
            b.set_pts(stamp);
            b.set_dts(gst::ClockTime::NONE);
        }
        self.src.push_buffer(b).is_ok()
    }
}

/// A running simulator; dropping it stops everything.
pub struct Simulator {
    port: u16,
    opts: SimOptions,
    server: rtsp::RTSPServer,
    mounts: Mounts,
    last_keys: LastKeys,
    /// RTSP connections accepted so far.
    connections: Arc<std::sync::atomic::AtomicUsize>,
    encoders: Vec<gst::Pipeline>,
    main_loop: glib::MainLoop,
    thread: Option<std::thread::JoinHandle<()>>,
    auth: rtsp::RTSPAuth,
}

impl Simulator {
    /// Starts the encoders and the RTSP server.
    pub fn start(opts: SimOptions) -> anyhow::Result<Simulator> {
        gst::init().context("GStreamer init")?;
        let (encoder, parser, payloader, caps, package) = opts.codec.elements();
        for (el, pkg) in [
            ("videotestsrc", "gstreamer1.0-plugins-base"),
            ("appsrc", "gstreamer1.0-plugins-base"),
            ("appsink", "gstreamer1.0-plugins-base"),
            (encoder, package),
            (parser, "gstreamer1.0-plugins-bad"),
            (payloader, "gstreamer1.0-plugins-good"),
        ]
        .into_iter()
        .chain(opts.audio.needs())
        {
            if gst::ElementFactory::find(el).is_none() {
                return Err(anyhow!(
                    "GStreamer element {el} is missing: install {pkg} (tests/run.sh does)"
                ));
            }
        }
        let mounts: Mounts = Arc::new(Mutex::new(HashMap::new()));
        let distinct = opts.distinct.max(1);
        let last_keys: LastKeys = Arc::new(Mutex::new(vec![None; distinct]));

        // Encoders: one per distinct stream.
        let mut encoders = Vec::new();
        for k in 0..distinct {
            let pattern = opts
                .pattern
                .as_deref()
                .unwrap_or(["ball", "smpte", "snow", "pinwheel"][k % 4]);
            let launch = format!(
                "videotestsrc is-live=true pattern={pattern} ! video/x-raw,width={w},height={h},framerate={fps}/1 \
                 ! {encoder} tune=zerolatency speed-preset=ultrafast key-int-max={gop} bitrate={br} \
                 ! {parser} config-interval=-1 ! {caps} ! appsink name=sink sync=false max-buffers=8 drop=true \
                 {audio}",
                audio = opts.audio.encoder_branch(),
                w = opts.width,
                h = opts.height,
                fps = opts.fps,
                gop = opts.gop_frames,
                br = opts.bitrate_kbps,
            );
            let pipeline = gst::parse::launch(&launch)
                .with_context(|| format!("encoder pipeline: {launch}"))?
                .downcast::<gst::Pipeline>()
                .map_err(|_| anyhow!("not a pipeline"))?;
            let sink = pipeline
                .by_name("sink")
                .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
                .ok_or_else(|| anyhow!("no appsink"))?;
            let mounts2 = mounts.clone();
            let keys2 = last_keys.clone();
            sink.set_callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |sink| {
                        let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        let Some(buffer) = sample.buffer_owned() else {
                            return Ok(gst::FlowSuccess::Ok);
                        };
                        let key = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
                        if key {
                            keys2.lock().unwrap()[k] = Some(buffer.clone());
                        }
                        let mut m = mounts2.lock().unwrap();
                        for (i, mount) in m.iter_mut() {
                            if i % distinct != k || mount.stalled || mount.stopped {
                                continue;
                            }
                            mount.sources.retain_mut(|feed| {
                                if feed.waiting_key && !key {
                                    return true;
                                }
                                feed.waiting_key = false;
                                feed.push(&buffer)
                            });
                        }
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            );
            if let Some(asink) = pipeline
                .by_name("asink")
                .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            {
                let mounts3 = mounts.clone();
                asink.set_callbacks(
                    gst_app::AppSinkCallbacks::builder()
                        .new_sample(move |sink| {
                            let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                            let Some(buffer) = sample.buffer_owned() else {
                                return Ok(gst::FlowSuccess::Ok);
                            };
                            let mut m = mounts3.lock().unwrap();
                            for (i, mount) in m.iter_mut() {
                                if i % distinct != k || mount.stalled || mount.stopped {
                                    continue;
                                }
                                mount.audio_sources.retain_mut(|feed| {
                                    if feed.src.caps().is_none() {
                                        feed.src
                                            .set_caps(sample.caps().map(|c| c.to_owned()).as_ref());
                                    }
                                    feed.push(&buffer)
                                });
                            }
                            Ok(gst::FlowSuccess::Ok)
                        })
                        .build(),
                );
            }
            pipeline
                .set_state(gst::State::Playing)
                .context("start encoder")?;
            encoders.push(pipeline);
        }

        // The RTSP server.
        let server = rtsp::RTSPServer::new();
        server.set_address("127.0.0.1");
        server.set_service(&opts.port.to_string());
        // gst-rtsp-server's default pool has one thread, which serves
        // clients one after another (each DESCRIBE waits for its media to
        // preroll on a key frame). Real cameras answer in parallel.
        if let Some(pool) = server.thread_pool() {
            pool.set_max_threads(64);
        }
        let auth = rtsp::RTSPAuth::new();
        auth.set_supported_methods(gstreamer_rtsp::RTSPAuthMethod::Basic);
        // Anonymous clients get a role that mounts with credentials refuse.
        let mut anonymous = rtsp::RTSPToken::builder()
            .field(rtsp::RTSP_TOKEN_MEDIA_FACTORY_ROLE, "anonymous")
            .build();
        auth.set_default_token(Some(&mut anonymous));
        server.set_auth(Some(&auth));
        let sim = Simulator {
            port: 0,
            opts: opts.clone(),
            server,
            mounts,
            last_keys,
            connections: Default::default(),
            encoders,
            main_loop: glib::MainLoop::new(None, false),
            thread: None,
            auth,
        };
        for i in 0..opts.cameras {
            sim.mounts.lock().unwrap().insert(i, Mount::default());
            sim.add_factory(i, None)?;
        }
        let mut sim = sim;
        let connections = sim.connections.clone();
        sim.server.connect_client_connected(move |_, _| {
            connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        });
        let _source = sim.server.attach(None).context("attach the RTSP server")?;
        sim.port = sim.server.bound_port() as u16;
        let ml = sim.main_loop.clone();
        sim.thread = Some(std::thread::spawn(move || ml.run()));
        Ok(sim)
    }

    fn add_factory(&self, i: usize, credentials: Option<(&str, &str)>) -> anyhow::Result<()> {
        let factory = rtsp::RTSPMediaFactory::new();
        let (_, parser, payloader, caps, _) = self.opts.codec.elements();
        factory.set_launch(&format!(
            "( appsrc name=src is-live=true format=time do-timestamp=false caps={caps} \
             ! {parser} ! {payloader} name=pay0 pt=96 config-interval=-1 {audio} )",
            audio = self.opts.audio.media_branch(),
        ));
        factory.set_shared(true);
        use gstreamer_rtsp::RTSPLowerTrans;
        factory.set_protocols(match self.opts.transports {
            SimTransports::Any => RTSPLowerTrans::UDP | RTSPLowerTrans::TCP,
            SimTransports::TcpOnly => RTSPLowerTrans::TCP,
            SimTransports::UdpOnly => RTSPLowerTrans::UDP,
        });
        let role = if let Some((user, pass)) = credentials {
            let role = format!("cam{i}");
            self.auth.add_basic(
                rtsp::RTSPAuth::make_basic(user, pass).as_str(),
                &rtsp::RTSPToken::builder()
                    .field(rtsp::RTSP_TOKEN_MEDIA_FACTORY_ROLE, &role)
                    .build(),
            );
            role
        } else {
            "anonymous".to_string()
        };
        // Permissions: gst-rtsp-server answers a refused "access" with 404
        // and a refused "construct" with 401. A protected mount lets anyone
        // find it but only its role construct (play) it, so bad credentials
        // get 401, as a real camera answers. Open mounts admit every role.
        let mut grants: Vec<(String, bool)> = vec![(role.clone(), true)];
        if credentials.is_some() {
            grants.push(("anonymous".into(), false));
        } else {
            for m in self.mounts.lock().unwrap().keys() {
                grants.push((format!("cam{m}"), true));
            }
        }
        for (r, construct) in grants {
            factory.add_role_from_structure(
                &gst::Structure::builder(r.as_str())
                    .field(rtsp::RTSP_PERM_MEDIA_FACTORY_ACCESS, true)
                    .field(rtsp::RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, construct)
                    .build(),
            );
        }
        let mounts = self.mounts.clone();
        let last_keys = self.last_keys.clone();
        let distinct = self.opts.distinct.max(1);
        factory.connect_media_configure(move |_, media| {
            let Ok(bin) = media.element().downcast::<gst::Bin>() else {
                return;
            };
            let appsrc = |name: &str| {
                bin.by_name(name)
                    .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            };
            let Some(src) = appsrc("src") else {
                return;
            };
            let audio = appsrc("asrc");
            // Prime the new media with the last key frame, as a camera
            // answers at once: gst-rtsp-server builds the SDP only once a
            // buffer with the parameter sets has flowed, so without this
            // every DESCRIBE would wait up to a GOP. The media then skips
            // the encoder's deltas until its next key frame, so the stream
            // stays decodable.
            let primer = last_keys.lock().unwrap()[i % distinct].clone();
            if let Some(m) = mounts.lock().unwrap().get_mut(&i) {
                let primed = match &primer {
                    Some(key) if !m.stalled && !m.stopped => {
                        Feed::new(src.clone(), false).push(key)
                    }
                    _ => false,
                };
                m.sources.push(Feed::new(src, primed));
                m.audio_sources.extend(audio.map(|a| Feed::new(a, false)));
            }
        });
        self.server
            .mount_points()
            .ok_or_else(|| anyhow!("no mount points"))?
            .add_factory(&format!("/cam/{i}"), factory);
        Ok(())
    }

    /// RTSP connections the server has accepted so far (pulls and probes).
    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn options(&self) -> &SimOptions {
        &self.opts
    }

    /// The URL of camera `i`.
    pub fn url(&self, i: usize) -> String {
        format!("rtsp://127.0.0.1:{}/cam/{i}", self.port)
    }

    /// Stalls or resumes a mount: while stalled, its clients stay connected
    /// and receive nothing.
    pub fn set_stalled(&self, i: usize, stalled: bool) {
        if let Some(m) = self.mounts.lock().unwrap().get_mut(&i) {
            m.stalled = stalled;
        }
    }

    /// Stops a mount: clients receive nothing more and new requests get 404.
    pub fn stop(&self, i: usize) {
        if let Some(m) = self.mounts.lock().unwrap().get_mut(&i) {
            m.stopped = true;
            for feed in m.sources.drain(..).chain(m.audio_sources.drain(..)) {
                let _ = feed.src.end_of_stream();
            }
        }
        if let Some(mp) = self.server.mount_points() {
            mp.remove_factory(&format!("/cam/{i}"));
        }
    }

    /// Starts a stopped mount again.
    pub fn restart(&self, i: usize) -> anyhow::Result<()> {
        let creds = {
            let mut m = self.mounts.lock().unwrap();
            let mount = m.entry(i).or_default();
            mount.stopped = false;
            mount.stalled = false;
            mount.credentials.clone()
        };
        self.add_factory(i, creds.as_ref().map(|(u, p)| (u.as_str(), p.as_str())))
    }

    /// Makes mount `i` require Basic credentials.
    pub fn require_credentials(&self, i: usize, user: &str, password: &str) -> anyhow::Result<()> {
        if let Some(mp) = self.server.mount_points() {
            mp.remove_factory(&format!("/cam/{i}"));
        }
        if let Some(m) = self.mounts.lock().unwrap().get_mut(&i) {
            m.credentials = Some((user.to_string(), password.to_string()));
            m.sources.clear();
            m.audio_sources.clear();
        }
        self.add_factory(i, Some((user, password)))
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        for p in &self.encoders {
            let _ = p.set_state(gst::State::Null);
        }
        self.main_loop.quit();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
