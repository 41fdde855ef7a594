//! `camgate demo`: the gateway on a throwaway SQLite database filled with a
//! sample catalogue: checkpoints and cameras in four districts of different
//! shapes (a county in Gansu, a Beijing district, a Hangzhou district and
//! Dongguan, whose townships hang directly off the prefecture). Each camera's
//! RTSP URL comes from the caller: the simulator's mounts when the binary has
//! the `gstreamer` feature.

use std::collections::BTreeMap;

use crate::catalogue::{CameraInput, CheckpointInput, validate};
use crate::importer;
use crate::store::Store;

/// (district code, district label, longitude, latitude) of the sample areas.
const AREAS: [(&str, &str, f64, f64); 4] = [
    ("620602", "凉州区", 102.638, 37.928),
    ("110101", "东城区", 116.416, 39.928),
    ("330106", "西湖区", 120.130, 30.259),
    ("441900", "东莞市", 113.752, 23.021),
];

/// Street names of the sample catalogue (also used by the bench).
pub const STREETS: [&str; 10] = [
    "东大街",
    "西大街",
    "南关路",
    "北关路",
    "人民路",
    "建设路",
    "中山路",
    "解放路",
    "新华路",
    "育才路",
];
/// Places along a street.
pub const SPOTS: [&str; 6] = ["路口", "公交站", "小学门口", "农贸市场", "社区东门", "广场"];

/// Fills the store with the sample catalogue: `cameras` cameras spread over
/// the sample areas, 3 checkpoints per area, camera `n` at `url(n)`. Every
/// tenth camera is pulled `always`, the rest `on_demand`. Returns the number
/// of cameras.
pub async fn seed(
    store: &dyn Store,
    cameras: usize,
    url: &dyn Fn(usize) -> String,
) -> anyhow::Result<usize> {
    let lk = importer::lookups(store, AREAS.iter().map(|a| a.0.to_string()), [], 0).await?;
    let mut checkpoint_ids = Vec::new();
    for (i, (code, label, lon, lat)) in AREAS.iter().enumerate() {
        for k in 0..3 {
            let input = CheckpointInput {
                name: Some(format!("{label}{}卡口", STREETS[(i + k) % STREETS.len()])),
                district: Some(code.to_string()),
                kind: Some(["03", "01", "99"][k].into()),
                address: Some(format!("{label}{}与{}交叉口", STREETS[k], STREETS[k + 3])),
                longitude: Some(Some(lon + 0.01 * k as f64)),
                latitude: Some(Some(lat - 0.01 * k as f64)),
                ..Default::default()
            };
            let w = validate::checkpoint(&input, None, &lk)
                .map_err(|e| anyhow::anyhow!("demo checkpoint: {e:?}"))?;
            checkpoint_ids.push((code.to_string(), store.create_checkpoint(&w).await?));
        }
    }
    let lk = importer::lookups(
        store,
        AREAS.iter().map(|a| a.0.to_string()),
        checkpoint_ids.iter().map(|c| c.1.clone()),
        0,
    )
    .await?;
    let mut writes = Vec::with_capacity(cameras);
    for n in 0..cameras {
        let (code, label, lon, lat) = AREAS[n % AREAS.len()];
        let street = STREETS[(n / AREAS.len()) % STREETS.len()];
        let spot = SPOTS[(n / 7) % SPOTS.len()];
        let social = n % 3 == 2;
        let checkpoint = (n % 5 == 0).then(|| {
            checkpoint_ids
                .iter()
                .filter(|(c, _)| c == code)
                .nth(n % 3)
                .map(|(_, id)| id.clone())
        });
        let input = CameraInput {
            name: Some(format!("{label}{street}{spot}{}号", n / AREAS.len() + 1)),
            district: Some(code.to_string()),
            checkpoint,
            point_type: Some([1, 2, 3, 9][n % 4]),
            ownership: Some(if social { "social" } else { "public" }.into()),
            address: Some(format!("{label}{street}{}号", 10 + n)),
            longitude: Some(Some(lon + (n % 50) as f64 * 0.001)),
            latitude: Some(Some(lat + (n % 37) as f64 * 0.001)),
            rtsp_url: Some(url(n)),
            pull_mode: Some(if n % 10 == 0 { "always" } else { "on_demand" }.into()),
            tags: Some(BTreeMap::from([("来源".to_string(), "demo".to_string())])),
            ..Default::default()
        };
        writes.push(
            validate::camera(&input, None, &lk)
                .map_err(|e| anyhow::anyhow!("demo camera {n}: {e:?}"))?,
        );
    }
    store.import_cameras(&writes, &|_| {}).await?;
    Ok(cameras)
}
