//! Writes each fuzz target's seeds (`fuzzing::seeds`) into `<dir>/<target>/seed-<n>`,
//! the corpus directories of `fuzz/`: `cargo run -p fuzzing --example seeds -- fuzz/corpus`.

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "fuzz/corpus".into());
    for target in fuzzing::TARGETS {
        let out = std::path::Path::new(&dir).join(target);
        std::fs::create_dir_all(&out).expect("the corpus directory");
        for (i, seed) in fuzzing::seeds(target).iter().enumerate() {
            std::fs::write(out.join(format!("seed-{i}")), seed).expect("a seed file");
        }
    }
}
