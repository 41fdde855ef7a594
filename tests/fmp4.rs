//! The fMP4 muxer's output read by clients we did not write: the demo clip
//! muxed into an init segment and one fragment per GOP must be read by
//! ffprobe with the right codec, size and frame count, and decode in ffmpeg
//! with no error. Skips (loudly) without ffmpeg, unless
//! CAMGATE_REQUIRE_TOOLS=1 (tests/run.sh) makes that a failure.

use std::process::Command;

use camgate::relay::clip::{DEMO_CLIP, parse_h264};
use camgate::relay::fmp4::{Sample, fragment, init_segment};

mod support;
use support::{decode_errors, have_ffprobe as have_ffmpeg};

#[test]
fn ffmpeg_reads_and_decodes_the_fragmented_clip() {
    if !have_ffmpeg() {
        return;
    }
    let clip = parse_h264(DEMO_CLIP).unwrap();
    let mut info = clip.info.clone();
    info.tracks[0].dimensions = Some((640, 360));
    let (init, _) = init_segment(&info).unwrap();
    let mut file = init.to_vec();
    let mut t = 0u64;
    for (seq, gop) in clip.frames.chunks(50).enumerate() {
        let samples: Vec<Sample> = gop
            .iter()
            .map(|(k, d)| Sample {
                duration: 3600,
                is_key: *k,
                data: d.clone(),
            })
            .collect();
        file.extend_from_slice(&fragment(seq as u32 + 1, t, &samples));
        t += 3600 * samples.len() as u64;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.mp4");
    std::fs::write(&path, &file).unwrap();
    let path = path.to_str().unwrap();
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries"])
        .args([
            "stream=codec_name,width,height,r_frame_rate,nb_read_frames",
            "-of",
            "csv=p=0",
            path,
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "h264,640,360,25/1,300",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(decode_errors(path), "", "decodes with no errors");
}
