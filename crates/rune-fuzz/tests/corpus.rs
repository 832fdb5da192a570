//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/*`) through the fuzz entry
//! points on the stable toolchain, so every input that once found a bug, and every seed,
//! is checked in every test run, with or without cargo-fuzz.

use std::path::PathBuf;

fn corpus_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

#[test]
fn every_target_has_a_seeded_corpus_that_replays_cleanly() {
    for (name, target) in rune_fuzz::TARGETS {
        let dir = corpus_root().join(name);
        let entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}; run `scripts/fuzz.sh --seed` to create it", dir.display()))
            .map(|e| e.expect("dir entry").path())
            .collect();
        assert!(entries.len() >= 3, "{name}: only {} corpus files in {}", entries.len(), dir.display());
        for path in entries {
            let bytes = std::fs::read(&path).expect("read corpus file");
            let outcome = std::panic::catch_unwind(|| target(&bytes));
            assert!(outcome.is_ok(), "{name}: {} makes the parser panic", path.display());
        }
    }
}

/// Every fuzz target under `fuzz/fuzz_targets/` is an entry point here, and the other
/// way round: adding a parser means adding both.
#[test]
fn fuzz_targets_and_entry_points_match() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/fuzz_targets");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("fuzz/fuzz_targets")
        .filter_map(|e| e.ok()?.path().file_stem()?.to_str().map(str::to_owned))
        .collect();
    files.sort();
    let mut names: Vec<String> = rune_fuzz::TARGETS.iter().map(|(n, _)| (*n).to_owned()).collect();
    names.sort();
    assert_eq!(files, names);
}
