//! Secret-scanning throughput with every built-in rule, on a 10 MB generated corpus of code-like
//! text that is dense in the prefilter's keywords (`token`, `secret`, `key`, `password`, `auth`,
//! URLs), with a few real-shaped (made-up) secrets: the worst realistic case for the prefilter.
//!
//! - `secrets/check/10MB`: the secret rules, [`Linter::check`] on one thread, in memory.
//! - `secrets/scan/10MB`: the secret rules, [`Linter::scan`] of the same files on disk (walk,
//!   read, check; all cores).
//! - `all-rules/scan/10MB`: the same scan with every built-in rule, syntax rules included.
//! - `build/secrets`, `build/all`: compiling the rules (the linter's start-up cost).
//!
//! `SANDGUARD_BENCH_DIR=/path cargo bench -p sandguard-lint --bench scan` also times a scan of a
//! real tree (e.g. `~/.cargo/registry/src`) with the secret rules.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sandguard_lint::{Language, Linter, SourceFile, builtin_rules};

const CORPUS_BYTES: usize = 10 << 20;
const FILE_BYTES: usize = 20 << 10;

/// Deterministic pseudo-random numbers (xorshift), so every run scans the same corpus.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }

    fn word(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len).map(|_| char::from(alphabet[(self.next() % alphabet.len() as u64) as usize])).collect()
    }
}

fn corpus() -> Vec<(PathBuf, String)> {
    const LINES: &[&str] = &[
        "    let token = request.headers().get(\"authorization\").cloned();",
        "    let secret_name = config.secret_name.clone(); // from the secret store",
        "    if api_key.is_empty() { return Err(Error::MissingKey); }",
        "    client = boto3.client('s3', region_name=os.environ['AWS_REGION'])",
        "    const password = await vault.read(`kv/${env}/db`).password;",
        "    url = f\"https://{host}:{port}/v1/auth/token\"",
        "    for (key, value) in map.iter() { out.insert(key.to_string(), value.len()); }",
        "    # refresh the access token before it expires",
        "    session.headers.update({'Authorization': f'Bearer {token}'})",
        "    let parsed: Vec<u8> = base64::decode(input).map_err(|e| e.to_string())?;",
        "    fn authenticate(&self, credentials: &Credentials) -> Result<Session, AuthError> {",
        "    DATABASE_URL = os.getenv('DATABASE_URL', 'postgres://localhost/dev')",
        "    export PATH=\"$HOME/.cargo/bin:$PATH\"",
        "    }",
        "",
        "    return { status: 200, body: JSON.stringify(result) };",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut files = Vec::new();
    let mut total = 0;
    while total < CORPUS_BYTES {
        let mut text = String::with_capacity(FILE_BYTES + 256);
        while text.len() < FILE_BYTES {
            text.push_str(rng.pick(LINES));
            text.push('\n');
            // About one secret per 40 KB.
            if rng.next() % 800 == 0 {
                let alnum = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
                text.push_str(&format!("    let gh = \"ghp_{}\";\n", rng.word(alnum, 36)));
            }
        }
        total += text.len();
        let extension = rng.pick(&["rs", "py", "ts", "sh", "toml"]);
        files.push((PathBuf::from(format!("src/m{}/f{}.{extension}", files.len() % 16, files.len())), text));
    }
    files
}

fn language(path: &Path) -> Language {
    sandguard_lint::detect_language(path, "")
}

fn bench(c: &mut Criterion) {
    let files = corpus();
    let bytes: usize = files.iter().map(|(_, text)| text.len()).sum();
    let secret_rules = builtin_rules().expect("built-in rules parse").into_iter().filter(|r| r.rule.pattern.is_some());
    let secrets = Linter::builder().builtin_rules(false).rules(secret_rules).build().expect("secret rules compile");
    let all = Linter::builder().build().expect("built-in rules compile");

    let dir = tempfile::tempdir().expect("a temporary folder");
    for (path, text) in &files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("create folders");
        std::fs::write(path, text).expect("write the corpus");
    }

    let mut group = c.benchmark_group("secrets");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("check/10MB", |b| {
        b.iter(|| {
            let mut findings = 0;
            for (path, text) in &files {
                let file = SourceFile { path, language: language(path), text };
                findings += secrets.check(&file).findings.len();
            }
            black_box(findings)
        })
    });
    group.bench_function("scan/10MB", |b| {
        b.iter(|| black_box(secrets.scan(&[dir.path()]).expect("scan").findings.len()))
    });
    group.finish();

    let mut group = c.benchmark_group("all-rules");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("scan/10MB", |b| b.iter(|| black_box(all.scan(&[dir.path()]).expect("scan").findings.len())));
    group.finish();

    let mut group = c.benchmark_group("build");
    group.bench_function("secrets", |b| {
        b.iter(|| {
            let rules = builtin_rules().expect("parse").into_iter().filter(|r| r.rule.pattern.is_some());
            black_box(Linter::builder().builtin_rules(false).rules(rules).build().expect("build"))
        })
    });
    group.sample_size(10);
    group.bench_function("all", |b| b.iter(|| black_box(Linter::builder().build().expect("build"))));
    group.finish();

    if let Some(real) = std::env::var_os("SANDGUARD_BENCH_DIR") {
        let started = Instant::now();
        let report = secrets.scan(&[PathBuf::from(&real)]).expect("scan");
        let elapsed = started.elapsed();
        let size: u64 = ignore::WalkBuilder::new(&real)
            .hidden(false)
            .require_git(false)
            .build()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_some_and(|t| t.is_file()))
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .filter(|&len| len <= sandguard_lint::DEFAULT_MAX_FILE_SIZE)
            .sum();
        println!(
            "secret rules over {}: {} files, {:.1} MB in {:.2?} = {:.0} MB/s, {} findings",
            Path::new(&real).display(),
            report.summary.files,
            size as f64 / 1e6,
            elapsed,
            size as f64 / 1e6 / elapsed.as_secs_f64(),
            report.findings.len()
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
