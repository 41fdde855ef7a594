//! Audio RTP payloads to frames: AAC in `mpeg4-generic` (RFC 3640,
//! AAC-hbr: 13-bit sizes and 3-bit indexes, the mode every camera uses) and
//! G.711 (RFC 3551: the payload is the frame). Pure and bounded: one AAC
//! frame is at most [`MAX_AAC_FRAME_BYTES`].

use bytes::Bytes;

use crate::media::{Codec, Track};

/// An AAC frame holds 1,024 samples; at 8 channels and the highest rate
/// the standard allows it stays under 6,144 bytes per channel.
pub const MAX_AAC_FRAME_BYTES: usize = 8 * 6144;

/// One audio frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioFrame {
    pub pts: i64,
    pub data: Bytes,
}

/// One audio track's depacketizer.
#[derive(Debug)]
pub struct AudioDepacketizer {
    codec: Codec,
    clock_rate: u32,
    size_bits: u32,
    index_bits: u32,
    /// A fragmented AAC frame being joined: its size and the bytes so far.
    fragment: Option<(usize, Vec<u8>)>,
    config: Bytes,
    out: Vec<AudioFrame>,
}

impl AudioDepacketizer {
    /// `None` when the codec or its `fmtp` is not one the gateway carries.
    pub fn new(codec: Codec, clock_rate: u32, fmtp: Option<&str>) -> Result<Self, String> {
        let mut d = AudioDepacketizer {
            codec,
            clock_rate,
            size_bits: 0,
            index_bits: 0,
            fragment: None,
            config: Bytes::new(),
            out: Vec::new(),
        };
        match codec {
            Codec::Pcma | Codec::Pcmu => {}
            Codec::Aac => {
                let f = fmtp.ok_or("AAC without fmtp")?;
                let get = |k| super::sdp::fmtp_param(f, k);
                let num = |k| get(k).and_then(|v: &str| v.parse::<u32>().ok());
                d.size_bits = num("sizelength").ok_or("AAC without sizelength")?;
                d.index_bits = num("indexlength").unwrap_or(0);
                if !(1..=16).contains(&d.size_bits) || d.index_bits > 8 {
                    return Err("AAC with unusual AU header lengths".into());
                }
                if get("mode").is_some_and(|m| {
                    !m.eq_ignore_ascii_case("aac-hbr") && !m.eq_ignore_ascii_case("aac-lbr")
                }) {
                    return Err("AAC in a mode other than AAC-hbr/AAC-lbr".into());
                }
                let config = get("config").ok_or("AAC without config")?;
                d.config = Bytes::from(hex::decode(config).map_err(|_| "AAC config is not hex")?);
                if d.config.len() < 2 || d.config.len() > 64 {
                    return Err("AAC config of an odd size".into());
                }
            }
            other => return Err(format!("audio codec {other} is not carried")),
        }
        Ok(d)
    }

    pub fn track(&self) -> Track {
        Track {
            codec: self.codec,
            clock_rate: self.clock_rate,
            rfc6381: (self.codec == Codec::Aac).then(|| format!("mp4a.40.{}", self.config[0] >> 3)),
            dimensions: None,
            extra_data: self.config.clone(),
        }
    }

    /// Frames finished by the last push.
    pub fn drain(&mut self) -> std::vec::Drain<'_, AudioFrame> {
        self.out.drain(..)
    }

    pub fn push(
        &mut self,
        pts: i64,
        marker: bool,
        lost: u16,
        payload: Bytes,
    ) -> Result<(), String> {
        if self.codec != Codec::Aac {
            if !payload.is_empty() {
                self.out.push(AudioFrame { pts, data: payload });
            }
            return Ok(());
        }
        if lost > 0 {
            self.fragment = None;
        }
        if payload.len() < 2 {
            return Err("AAC packet without AU headers".into());
        }
        let header_bits = u16::from_be_bytes([payload[0], payload[1]]) as usize;
        let header_bytes = header_bits.div_ceil(8);
        let per = (self.size_bits + self.index_bits) as usize;
        let Some(data) = payload.get(2 + header_bytes..) else {
            return Err("AAC AU headers past the packet".into());
        };
        let headers = &payload[2..2 + header_bytes];
        let count = header_bits / per;
        if let Some((size, mut buf)) = self.fragment.take() {
            // The rest of a fragmented frame (one AU header repeating its
            // whole size).
            buf.extend_from_slice(data);
            if buf.len() > size {
                return Err("AAC fragment longer than its frame".into());
            }
            if buf.len() == size || marker {
                if buf.len() == size {
                    self.out.push(AudioFrame {
                        pts,
                        data: Bytes::from(buf),
                    });
                }
            } else {
                self.fragment = Some((size, buf));
            }
            return Ok(());
        }
        let mut offset = 0usize;
        for i in 0..count {
            let size = read_bits(headers, i * per, self.size_bits as usize) as usize;
            if size > MAX_AAC_FRAME_BYTES {
                return Err(format!(
                    "AAC frame of {size} bytes (over {MAX_AAC_FRAME_BYTES})"
                ));
            }
            let frame_pts = pts + 1024 * i as i64;
            match data.get(offset..offset + size) {
                Some(_) => {
                    self.out.push(AudioFrame {
                        pts: frame_pts,
                        data: payload
                            .slice(2 + header_bytes + offset..2 + header_bytes + offset + size),
                    });
                    offset += size;
                }
                None if count == 1 && !marker => {
                    self.fragment = Some((size, data.to_vec()));
                    return Ok(());
                }
                None => return Err("AAC frame past the packet".into()),
            }
        }
        Ok(())
    }
}

fn read_bits(data: &[u8], start: usize, n: usize) -> u32 {
    (0..n).fold(0u32, |acc, i| {
        let bit = start + i;
        let b = data
            .get(bit / 8)
            .map_or(0, |byte| (byte >> (7 - bit % 8)) & 1);
        (acc << 1) | b as u32
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FMTP: &str = "streamtype=5; profile-level-id=15; mode=AAC-hbr; config=1408; sizeLength=13; indexLength=3; indexDeltaLength=3";

    fn aac_packet(frames: &[&[u8]]) -> Bytes {
        let mut v = ((frames.len() * 16) as u16).to_be_bytes().to_vec();
        for f in frames {
            v.extend(((f.len() as u16) << 3).to_be_bytes());
        }
        for f in frames {
            v.extend(*f);
        }
        Bytes::from(v)
    }

    #[test]
    fn aac_frames_and_their_times() {
        let mut d = AudioDepacketizer::new(Codec::Aac, 16_000, Some(FMTP)).unwrap();
        assert_eq!(d.track().rfc6381.as_deref(), Some("mp4a.40.2"));
        assert_eq!(&d.track().extra_data[..], &[0x14, 0x08]);
        d.push(0, true, 0, aac_packet(&[b"abc", b"de"])).unwrap();
        let got: Vec<_> = d.drain().collect();
        assert_eq!(got.len(), 2);
        assert_eq!((got[1].pts, &got[1].data[..]), (1024, &b"de"[..]));
        // A frame in two packets.
        let mut first = aac_packet(&[b"0123456789"]).to_vec();
        first.truncate(4 + 6);
        d.push(2048, false, 0, Bytes::from(first)).unwrap();
        assert_eq!(d.drain().count(), 0);
        let mut rest = aac_packet(&[b"0123456789"]).to_vec();
        rest.drain(4..4 + 6);
        d.push(2048, true, 0, Bytes::from(rest)).unwrap();
        assert_eq!(&d.drain().next().unwrap().data[..], b"0123456789");
    }

    #[test]
    fn odd_aac_is_refused() {
        assert!(AudioDepacketizer::new(Codec::Aac, 16_000, None).is_err());
        assert!(
            AudioDepacketizer::new(Codec::Aac, 16_000, Some("sizelength=13;config=zz")).is_err()
        );
        let mut d = AudioDepacketizer::new(Codec::Aac, 16_000, Some(FMTP)).unwrap();
        assert!(
            d.push(0, true, 0, Bytes::from_static(&[0xff, 0xff, 1]))
                .is_err()
        );
        assert!(d.push(0, true, 0, Bytes::from_static(&[0])).is_err());
        // A size over the bound.
        assert!(
            d.push(0, true, 0, Bytes::from_static(&[0, 16, 0xff, 0xf8]))
                .is_err()
        );
    }

    #[test]
    fn g711_passes_through() {
        let mut d = AudioDepacketizer::new(Codec::Pcma, 8000, None).unwrap();
        d.push(160, true, 0, Bytes::from_static(b"xyz")).unwrap();
        assert_eq!(
            d.drain().next().unwrap(),
            AudioFrame {
                pts: 160,
                data: Bytes::from_static(b"xyz")
            }
        );
        assert!(d.track().rfc6381.is_none());
    }
}
