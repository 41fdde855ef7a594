//! A probe of a camera nobody pulls: RTSP OPTIONS then DESCRIBE on one TCP
//! connection, with Basic or Digest credentials when the camera asks.
//! Nothing is set up or played, so a probe costs the camera one short
//! connection and no media. The connection is the pull's own
//! ([`super::session::Conn`]), with the same bounds.

use super::session::{Conn, PullLimits, check};
use crate::health::Reason;
pub use crate::pull::ProbeResult;
use crate::pull::{PullError, PullTarget};

const USER_AGENT: &str = concat!("camgate/", env!("CARGO_PKG_VERSION"), " probe");

/// The codec of the first video stream of an SDP (`h264`, `h265`, or the
/// encoding name lower-cased), `None` without a video stream.
pub fn sdp_video_codec(sdp: &str) -> Option<String> {
    let mut in_video = false;
    let mut payload_types: Vec<String> = Vec::new();
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(m) = line.strip_prefix("m=") {
            if in_video {
                return None; // the video stream had no usable rtpmap
            }
            let mut f = m.split_whitespace();
            in_video = f.next() == Some("video");
            payload_types = f.skip(2).map(str::to_string).collect();
        } else if in_video && let Some(rest) = line.strip_prefix("a=rtpmap:") {
            let (pt, enc) = rest.split_once(' ')?;
            if payload_types.iter().any(|p| p == pt) {
                let name = enc.split('/').next()?.to_ascii_lowercase();
                return Some(match name.as_str() {
                    "hevc" => "h265".into(),
                    _ => name,
                });
            }
        }
    }
    None
}

/// OPTIONS + DESCRIBE against `target` with the default limits. The caller
/// bounds the time.
pub async fn probe(target: &PullTarget) -> ProbeResult {
    probe_with(target, PullLimits::default()).await
}

/// OPTIONS + DESCRIBE against `target`. The caller bounds the time.
pub async fn probe_with(target: &PullTarget, limits: PullLimits) -> ProbeResult {
    let secret = target.password.as_ref();
    let url = url::Url::parse(&target.url)
        .map_err(|e| PullError::new(Reason::ProtocolError, format!("bad URL: {e}")))?;
    let mut conn = Conn::connect(target, &url, limits, USER_AGENT).await?;
    let opts = conn.request("OPTIONS", url.as_str(), &[]).await?;
    // A camera that does not implement OPTIONS may still DESCRIBE.
    if !matches!(opts.status, 405 | 501) {
        check(&opts, "OPTIONS", secret)?;
    }
    let desc = conn
        .request("DESCRIBE", url.as_str(), &[("Accept", "application/sdp")])
        .await?;
    check(&desc, "DESCRIBE", secret)?;
    let sdp = String::from_utf8_lossy(&desc.body);
    match sdp_video_codec(&sdp) {
        Some(c) if c == "h264" || c == "h265" => Ok(Some(c)),
        Some(c) => Err(PullError::new(
            Reason::UnsupportedCodec,
            format!("video codec {c} (H.264 or H.265 needed)"),
        )),
        None => Err(PullError::new(
            Reason::UnsupportedCodec,
            "the camera's SDP has no video stream",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_video_codec() {
        let sdp = "v=0\r\nm=audio 0 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n\
                   m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\n";
        assert_eq!(sdp_video_codec(sdp).as_deref(), Some("h264"));
        let sdp = "m=video 0 RTP/AVP 98\na=rtpmap:97 H264/90000\na=rtpmap:98 H265/90000\n";
        assert_eq!(sdp_video_codec(sdp).as_deref(), Some("h265"));
        assert_eq!(
            sdp_video_codec("m=video 0 RTP/AVP 26\r\na=rtpmap:26 JPEG/90000").as_deref(),
            Some("jpeg")
        );
        assert_eq!(
            sdp_video_codec("m=audio 0 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000"),
            None
        );
        assert_eq!(sdp_video_codec(""), None);
    }
}
