//! What the attributes cost at compile time: three generated crates of 300 functions each
//! (100 sync, 100 returning `Result`, 100 async), with `#[flujo::pipeline_step]`, with
//! `#[tracing::instrument]` (`err` on the `Result` ones, which is what flujo records), and with
//! no attribute. Each is built on its own, dependencies already built: cold (the crate's
//! artifacts cleaned) and incremental (one function's body edited). Criterion times the
//! `cargo build` of the crate alone; the figure that matters is each crate's time over the
//! plain one.
//!
//! Run: `cargo bench -p flujo-benches --bench compile_time` (about 3 minutes; offline: the dependencies come
//! from the local registry cache that building this project filled).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};

const FUNCTIONS_PER_SHAPE: usize = 100;

#[derive(Clone, Copy)]
enum Attribute {
    None,
    Flujo,
    Tracing,
}

impl Attribute {
    const ALL: [Attribute; 3] = [Attribute::None, Attribute::Flujo, Attribute::Tracing];

    fn package(self) -> &'static str {
        match self {
            Attribute::None => "plain",
            Attribute::Flujo => "with-flujo",
            Attribute::Tracing => "with-tracing",
        }
    }

    /// The attribute over a function of each shape: sync, `Result`, async.
    fn over(self, shape: Shape) -> &'static str {
        match (self, shape) {
            (Attribute::None, _) => "",
            (Attribute::Flujo, _) => "#[flujo::pipeline_step]\n",
            (Attribute::Tracing, Shape::Fallible) => "#[tracing::instrument(err)]\n",
            (Attribute::Tracing, _) => "#[tracing::instrument]\n",
        }
    }

    fn dependencies(self, project: &Path) -> String {
        match self {
            Attribute::None => String::new(),
            Attribute::Flujo => format!("flujo = {{ path = {:?} }}\n", project.display()),
            Attribute::Tracing => "tracing = \"0.1\"\n".to_owned(),
        }
    }
}

#[derive(Clone, Copy)]
enum Shape {
    Sync,
    Fallible,
    Async,
}

/// The crate's source; `edit` changes one function's body (the incremental build's change).
fn source(attribute: Attribute, edit: u64) -> String {
    let mut text = String::from("#![allow(clippy::all)]\n");
    for i in 0..FUNCTIONS_PER_SHAPE {
        let offset = if i == 0 { edit } else { i as u64 };
        text += &format!(
            "{}pub fn step_{i}(x: u64) -> u64 {{ x.wrapping_mul({offset}) + 1 }}\n\
             {}pub fn try_step_{i}(x: u64) -> Result<u64, std::num::TryFromIntError> \
             {{ u32::try_from(x).map(|v| u64::from(v) + {i}) }}\n\
             {}pub async fn async_step_{i}(x: u64) -> u64 {{ x + {i} }}\n",
            attribute.over(Shape::Sync),
            attribute.over(Shape::Fallible),
            attribute.over(Shape::Async),
        );
    }
    text
}

/// A workspace of the three generated crates under `target/`, its lockfile the project's, so
/// that it builds with the same dependency versions and without the network.
struct Workspace {
    root: PathBuf,
}

impl Workspace {
    fn generate() -> Workspace {
        // This package's parent: the flujo package the generated crates depend on.
        let project = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        let root = project.join("target/compile-time-bench");
        let members: Vec<String> = Attribute::ALL
            .iter()
            .map(|a| format!("{:?}", a.package()))
            .collect();
        write(
            &root.join("Cargo.toml"),
            &format!(
                "[workspace]\nmembers = [{}]\nresolver = \"3\"\n",
                members.join(", ")
            ),
        );
        std::fs::copy(project.join("Cargo.lock"), root.join("Cargo.lock"))
            .expect("the project's lockfile is copied");
        for attribute in Attribute::ALL {
            let dir = root.join(attribute.package());
            write(
                &dir.join("Cargo.toml"),
                &format!(
                    "[package]\nname = {:?}\nversion = \"0.0.0\"\nedition = \"2024\"\n\
                     publish = false\n\n[dependencies]\n{}",
                    attribute.package(),
                    attribute.dependencies(&project)
                ),
            );
            write(&dir.join("src/lib.rs"), &source(attribute, 0));
        }
        let workspace = Workspace { root };
        // Builds every dependency once; what the benchmarks time is the generated crates.
        workspace.cargo(&["build", "--workspace"]);
        workspace
    }

    fn cargo(&self, args: &[&str]) -> Duration {
        let start = Instant::now();
        let status = Command::new(env!("CARGO"))
            .args(args)
            .args(["--offline", "--quiet"])
            .current_dir(&self.root)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR")
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cargo {args:?} failed in {:?}", self.root);
        start.elapsed()
    }

    /// A build of `attribute`'s crate with its artifacts and incremental state removed first.
    fn cold_build(&self, attribute: Attribute) -> Duration {
        self.cargo(&["clean", "-p", attribute.package()]);
        self.cargo(&["build", "-p", attribute.package()])
    }

    /// A build of `attribute`'s crate after one function's body changed.
    fn incremental_build(&self, attribute: Attribute, edit: u64) -> Duration {
        let lib = self.root.join(attribute.package()).join("src/lib.rs");
        write(&lib, &source(attribute, edit));
        self.cargo(&["build", "-p", attribute.package()])
    }
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("a parent directory"))
        .expect("the bench directory is created");
    std::fs::write(path, text).expect("the generated file is written");
}

fn compile_time(c: &mut Criterion) {
    let workspace = Workspace::generate();
    let mut group = c.benchmark_group("compile_300_fns");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    for attribute in Attribute::ALL {
        group.bench_function(format!("cold/{}", attribute.package()), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| workspace.cold_build(attribute)).sum())
        });
    }
    let mut edit = 1_000;
    for attribute in Attribute::ALL {
        group.bench_function(format!("incremental/{}", attribute.package()), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        edit += 1;
                        workspace.incremental_build(attribute, edit)
                    })
                    .sum()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, compile_time);
criterion_main!(benches);
