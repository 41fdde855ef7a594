//! The configuration file and environment overrides: whatever the text, the
//! loader answers a config or an error naming a key, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // The first line, when it looks like VAR=value, is an environment
    // override; the rest is the file.
    let (env, file) = match text.split_once('\n') {
        Some((first, rest)) if first.starts_with("CAMGATE__") => (first.split_once('='), rest),
        _ => (None, &*text),
    };
    let env: Vec<(String, String)> = env.map(|(k, v)| (k.to_string(), v.to_string())).into_iter().collect();
    let _ = camgate::config::Config::load_str(file, env);
});
