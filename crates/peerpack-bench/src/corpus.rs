//! A deterministic generator of realistic package catalogues.
//!
//! Words follow a Zipf distribution over a vocabulary whose head is real template-pack
//! vocabulary ("rust", "template", "http", ...) and whose tail is generated, pronounceable
//! words. So "very common" and "rare" are properties of the data, as in a real catalogue.

use std::path::Path;

use peerpack_core::record::RecordFields;
use peerpack_core::{ContentId, Manifest, PackageRecord, PublisherKey};

/// The head of the vocabulary, most frequent first.
const HEAD: &[&str] = &[
    "template",
    "project",
    "rust",
    "python",
    "service",
    "application",
    "library",
    "starter",
    "typescript",
    "react",
    "http",
    "api",
    "cli",
    "docker",
    "testing",
    "config",
    "web",
    "server",
    "client",
    "database",
    "workflow",
    "github",
    "actions",
    "ci",
    "kubernetes",
    "helm",
    "terraform",
    "axum",
    "tokio",
    "fastapi",
    "django",
    "flask",
    "node",
    "express",
    "vite",
    "vitest",
    "jest",
    "storybook",
    "tailwind",
    "postgres",
    "redis",
    "sqlite",
    "grpc",
    "graphql",
    "rest",
    "openapi",
    "lint",
    "format",
    "logging",
    "tracing",
    "metrics",
    "auth",
    "oauth",
    "jwt",
    "monorepo",
    "workspace",
    "plugin",
    "component",
    "module",
    "package",
    "crate",
    "wasm",
    "embedded",
    "microservice",
    "serverless",
    "lambda",
    "queue",
    "kafka",
    "cache",
    "cron",
    "scheduler",
    "migration",
    "schema",
    "orm",
    "validation",
    "frontend",
    "backend",
    "fullstack",
    "mobile",
    "android",
    "ios",
    "flutter",
    "swift",
    "kotlin",
    "java",
    "spring",
    "go",
    "gin",
    "elixir",
    "phoenix",
    "ruby",
    "rails",
    "dotnet",
    "blazor",
    "unity",
    "game",
    "engine",
    "shader",
];
const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ren", "tu", "sa", "vek", "dor", "ix", "pa", "qu", "zel", "bo", "fin", "gra",
    "hul", "jo", "nim", "os", "pry", "sti", "tor", "ul", "wy", "xen", "yor", "zu",
];
const CATEGORIES: &[&str] = &[
    "cli",
    "web",
    "service",
    "library",
    "ci",
    "containers",
    "data",
    "mobile",
    "infra",
    "testing",
    "docs",
    "game",
];

/// Size of the whole vocabulary.
pub const VOCAB: usize = 5000;
/// Ranks below this are "very common" words in queries.
pub const COMMON_RANKS: usize = 20;
/// Ranks at or above this are "rare" words in queries.
pub const RARE_FROM: usize = 1000;

/// splitmix64: small, fast, deterministic.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The vocabulary and its Zipf sampler.
pub struct Vocabulary {
    /// Words by rank.
    pub words: Vec<String>,
    cumulative: Vec<f64>,
}

impl Vocabulary {
    /// Build the vocabulary deterministically.
    pub fn new() -> Self {
        let mut words: Vec<String> = HEAD.iter().map(|w| w.to_string()).collect();
        let mut rng = Rng::new(7);
        while words.len() < VOCAB {
            let n = 2 + rng.below(2);
            let w: String = (0..n)
                .map(|_| SYLLABLES[rng.below(SYLLABLES.len())])
                .collect();
            if !words.contains(&w) {
                words.push(w);
            }
        }
        let mut total = 0.0;
        let cumulative = (1..=VOCAB)
            .map(|rank| {
                total += 1.0 / rank as f64;
                total
            })
            .collect();
        Self { words, cumulative }
    }

    /// A word drawn by Zipf frequency.
    pub fn sample(&self, rng: &mut Rng) -> &str {
        let total = self.cumulative[VOCAB - 1];
        let x = rng.unit() * total;
        let i = self.cumulative.partition_point(|c| *c < x).min(VOCAB - 1);
        &self.words[i]
    }
}

/// Generate `n` signed package records.
pub fn records(n: usize, seed: u64, vocab: &Vocabulary) -> Vec<PackageRecord> {
    let mut rng = Rng::new(seed);
    let keys: Vec<PublisherKey> = (0..50u8)
        .map(|i| PublisherKey::from_secret_bytes(&[i + 1; 32]))
        .collect();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("{}-{}-{i}", vocab.sample(&mut rng), vocab.sample(&mut rng));
        let words = 8 + rng.below(17);
        let description: Vec<&str> = (0..words).map(|_| vocab.sample(&mut rng)).collect();
        let mut tags: Vec<&str> = Vec::new();
        for _ in 0..(1 + rng.below(5)) {
            let t = vocab.sample(&mut rng);
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        let category = CATEGORIES[rng.below(CATEGORIES.len())];
        let quoted = |xs: &[&str]| {
            xs.iter()
                .map(|x| format!("\"{x}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let text = format!(
            "[package]\nname = \"{name}\"\nversion = \"{}.{}.{}\"\ndescription = \"{}\"\nlicense = \"MIT\"\nauthors = [\"Author {} <a{}@example.org>\"]\ncategories = [\"{category}\"]\ntags = [{}]\n",
            rng.below(3),
            rng.below(20),
            rng.below(10),
            description.join(" "),
            i % 997,
            i % 997,
            quoted(&tags),
        );
        let manifest = match Manifest::parse(&text, Path::new("generated.toml")) {
            Ok(m) => m,
            Err(e) => panic!("generator produced an invalid manifest: {e}"),
        };
        let fields = RecordFields {
            manifest,
            content_id: ContentId::of(name.as_bytes()),
            archive_size: 4096 + rng.below(1 << 20) as u64,
            seq: 1,
            published_at: 1_790_000_000 + i as u64,
        };
        match PackageRecord::sign(fields, &keys[i % keys.len()]) {
            Ok(r) => out.push(r),
            Err(e) => panic!("generator produced an unsignable record: {e}"),
        }
    }
    out
}
