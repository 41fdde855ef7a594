//! The parts of a camera's SDP (RFC 8866) that a pull needs: each media
//! section's type, payload type, encoding, clock rate, `fmtp` and control
//! URL, and the session's control URL. Pure.
//!
//! Lenient on purpose: cameras omit lines the RFC requires (`s=`, `t=`),
//! end lines with a bare LF, repeat attributes or put them before the first
//! `m=` line, and a strict parser would leave such a camera dark. Bounded:
//! the SDP is at most the wire limit on bodies, and only the first
//! [`MAX_MEDIA`] media sections are kept.

/// Media sections looked at; a camera offers one to four.
pub const MAX_MEDIA: usize = 16;

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `video`, `audio`, `application` ...
    pub kind: String,
    /// The first payload type of the `m=` line.
    pub payload_type: u8,
    /// Encoding name, lower-cased (`h264`, `h265`, `mpeg4-generic`, `pcma`).
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: Option<u16>,
    /// The `a=fmtp` parameters of that payload type, as written.
    pub fmtp: Option<String>,
    /// `a=control`, as written (absolute or relative).
    pub control: Option<String>,
}

/// What the SDP describes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Description {
    /// Session-level `a=control`.
    pub control: Option<String>,
    pub media: Vec<Media>,
}

/// Static payload types of RFC 3551 that cameras send without `rtpmap`.
fn static_payload(pt: u8) -> Option<(&'static str, u32, Option<u16>)> {
    match pt {
        0 => Some(("pcmu", 8000, Some(1))),
        8 => Some(("pcma", 8000, Some(1))),
        26 => Some(("jpeg", 90_000, None)),
        _ => None,
    }
}

/// Parses `sdp`; `Err` when it is not an SDP at all (no `m=` line or not
/// text).
pub fn parse(sdp: &[u8]) -> Result<Description, String> {
    let text = std::str::from_utf8(sdp).map_err(|_| "the SDP is not UTF-8 text".to_string())?;
    let mut d = Description::default();
    let mut cur: Option<Media> = None;
    let mut sections = 0usize;
    let finish = |m: Option<Media>, d: &mut Description| {
        if let Some(m) = m
            && d.media.len() < MAX_MEDIA
        {
            d.media.push(m);
        }
    };
    for line in text.lines() {
        let line = line.trim_end_matches('\r').trim();
        if let Some(m) = line.strip_prefix("m=") {
            finish(cur.take(), &mut d);
            sections += 1;
            let mut f = m.split_whitespace();
            let kind = f.next().unwrap_or("").to_ascii_lowercase();
            let pt = f
                .nth(2)
                .and_then(|p| p.parse::<u8>().ok())
                .filter(|p| *p < 128);
            cur = Some(Media {
                kind,
                payload_type: pt.unwrap_or(255),
                encoding: String::new(),
                clock_rate: 0,
                channels: None,
                fmtp: None,
                control: None,
            });
            if let Some(m) = cur.as_mut()
                && let Some((enc, rate, ch)) = pt.and_then(static_payload)
            {
                m.encoding = enc.into();
                m.clock_rate = rate;
                m.channels = ch;
            }
            continue;
        }
        let Some(attr) = line.strip_prefix("a=") else {
            continue;
        };
        let (name, value) = attr.split_once(':').unwrap_or((attr, ""));
        match (name, cur.as_mut()) {
            ("control", None) => d.control = Some(value.trim().to_string()),
            ("control", Some(m)) => m.control = Some(value.trim().to_string()),
            ("rtpmap", Some(m)) => {
                let Some((pt, enc)) = value.split_once(char::is_whitespace) else {
                    continue;
                };
                if pt.trim().parse::<u8>().ok() != Some(m.payload_type) {
                    continue;
                }
                let mut parts = enc.trim().split('/');
                let name = parts.next().unwrap_or("").to_ascii_lowercase();
                m.encoding = match name.as_str() {
                    "hevc" => "h265".into(),
                    _ => name,
                };
                m.clock_rate = parts
                    .next()
                    .and_then(|r| r.trim().parse().ok())
                    .unwrap_or(0);
                m.channels = parts.next().and_then(|c| c.trim().parse().ok());
            }
            ("fmtp", Some(m)) => {
                let Some((pt, params)) = value.split_once(char::is_whitespace) else {
                    continue;
                };
                if pt.trim().parse::<u8>().ok() == Some(m.payload_type) {
                    m.fmtp = Some(params.trim().to_string());
                }
            }
            _ => {}
        }
    }
    finish(cur.take(), &mut d);
    if sections == 0 {
        return Err("the SDP has no media section".into());
    }
    Ok(d)
}

/// The value of `key` in an `fmtp` parameter list (`a=1;b=2`), keys
/// compared without case.
pub fn fmtp_param<'a>(fmtp: &'a str, key: &str) -> Option<&'a str> {
    fmtp.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case(key).then(|| v.trim())
    })
}

/// Resolves a control attribute against the base URL (RFC 2326 C.1.1):
/// absolute as is, `*` or empty is the base, else relative to the base
/// (with a `/` between them, as cameras expect even without a trailing
/// slash on the base).
pub fn resolve_control(base: &url::Url, control: Option<&str>) -> Result<url::Url, String> {
    let c = control.unwrap_or("").trim();
    if c.is_empty() || c == "*" {
        return Ok(base.clone());
    }
    if c.contains("://") {
        return url::Url::parse(c).map_err(|e| format!("bad control URL: {e}"));
    }
    let mut b = base.clone();
    if !b.path().ends_with('/') {
        let p = format!("{}/", b.path());
        b.set_path(&p);
    }
    b.join(c).map_err(|e| format!("bad control URL: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HIK: &str = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=Media Presentation\r\n\
        a=control:*\r\nt=0 0\r\n\
        m=video 0 RTP/AVP 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 H264/90000\r\n\
        a=fmtp:96 profile-level-id=420029; packetization-mode=1; sprop-parameter-sets=Z00AKZpkA8ARPyzUBAQFAAADA+gAAOpgBA==,aO48gA==\r\n\
        a=control:trackID=1\r\n\
        m=audio 0 RTP/AVP 8\r\na=control:trackID=2\r\n";

    #[test]
    fn reads_a_camera_sdp() {
        let d = parse(HIK.as_bytes()).unwrap();
        assert_eq!(d.control.as_deref(), Some("*"));
        assert_eq!(d.media.len(), 2);
        let v = &d.media[0];
        assert_eq!(
            (
                v.kind.as_str(),
                v.payload_type,
                v.encoding.as_str(),
                v.clock_rate
            ),
            ("video", 96, "h264", 90_000)
        );
        assert_eq!(
            fmtp_param(v.fmtp.as_deref().unwrap(), "packetization-mode"),
            Some("1")
        );
        assert_eq!(v.control.as_deref(), Some("trackID=1"));
        // PCMA by its static payload type, without rtpmap.
        let a = &d.media[1];
        assert_eq!((a.encoding.as_str(), a.clock_rate), ("pcma", 8000));
    }

    #[test]
    fn resolves_controls() {
        let base = url::Url::parse("rtsp://10.0.0.1:554/Streaming/Channels/101").unwrap();
        assert_eq!(
            resolve_control(&base, Some("trackID=1")).unwrap().as_str(),
            "rtsp://10.0.0.1:554/Streaming/Channels/101/trackID=1"
        );
        assert_eq!(resolve_control(&base, Some("*")).unwrap(), base);
        assert_eq!(resolve_control(&base, None).unwrap(), base);
        assert_eq!(
            resolve_control(&base, Some("rtsp://h/x/stream=0"))
                .unwrap()
                .as_str(),
            "rtsp://h/x/stream=0"
        );
        let slash = url::Url::parse("rtsp://h/live/").unwrap();
        assert_eq!(
            resolve_control(&slash, Some("stream=1")).unwrap().as_str(),
            "rtsp://h/live/stream=1"
        );
    }

    #[test]
    fn odd_and_hostile_sdps() {
        assert!(parse(b"v=0\r\ns=x\r\n").is_err());
        assert!(parse(b"\xff\xfe").is_err());
        // HEVC spelled as such; LF endings; an rtpmap of another PT ignored.
        let d = parse(b"m=video 0 RTP/AVP 98\na=rtpmap:97 H264/90000\na=rtpmap:98 HEVC/90000\n")
            .unwrap();
        assert_eq!(d.media[0].encoding, "h265");
        // Many sections: only the first MAX_MEDIA are kept.
        let many = "m=video 0 RTP/AVP 96\r\n".repeat(1000);
        assert_eq!(parse(many.as_bytes()).unwrap().media.len(), MAX_MEDIA);
        // A payload type out of range is not mistaken for one.
        let d = parse(b"m=video 0 RTP/AVP 300\r\na=rtpmap:44 H264/90000\r\n").unwrap();
        assert_eq!(d.media[0].encoding, "");
    }
}
