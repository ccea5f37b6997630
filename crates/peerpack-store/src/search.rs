//! The tantivy search index over the catalogue.
//!
//! One document per package name, holding its latest version. Searched fields: name (boost
//! 3), tags (2), categories (1.5), description and authors (1), ranked by BM25; every word of
//! the query must match somewhere (conjunction). The query read as a name (lower case, spaces
//! as `-`) also matches names on its own: exactly (boosted far above the rest, so `rust cli`
//! finds `rust-cli` first), as a prefix (`ax` and `axum-serv` find `axum-service`), and with
//! typos (one edit for names of up to 5 characters, two above; a swap of two letters is one).
//! `category` and `tag` filters match exactly. [`SearchIndex::similar_names`] answers the
//! names nearest to an unknown one, for "did you mean".
//!
//! The index is derived data: [`SearchIndex::rebuild`] recreates it from the records in
//! SQLite, so deleting its directory loses nothing.

use std::path::Path;
use std::sync::Mutex;

use peerpack_core::{PackageName, PackageRecord};
use std::collections::HashMap;

use tantivy::collector::{Collector, Count, SegmentCollector, TopDocs};
use tantivy::columnar::StrColumn;
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, Query, QueryParser, TermQuery,
};
use tantivy::schema::{
    FAST, Field, IndexRecordOption, STORED, STRING, Schema, TEXT, TextFieldIndexing, TextOptions,
    Value,
};
use tantivy::{
    DocId, Index, IndexReader, IndexWriter, ReloadPolicy, Score, SegmentOrdinal, SegmentReader,
    TantivyDocument, Term,
};

/// Memory the index writer may use before flushing a segment.
const WRITER_MEMORY: usize = 64 * 1024 * 1024;
/// Boost given to an exact name match.
const EXACT_NAME_BOOST: f32 = 100.0;
/// Boost given to a name that starts with the query.
const PREFIX_NAME_BOOST: f32 = 20.0;
/// Boost given to a name within a few typos of the query.
const FUZZY_NAME_BOOST: f32 = 5.0;
/// Most results one query may ask for.
pub const MAX_LIMIT: usize = 1000;

/// Search index errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// tantivy failed.
    #[error("search index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    /// The index directory could not be opened.
    #[error("search index {path}: {reason}")]
    Open {
        /// The directory.
        path: String,
        /// Why.
        reason: String,
    },
}

/// A search request.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    /// Free text; empty means "everything" (then filters decide).
    pub text: String,
    /// Only packages in this category.
    pub category: Option<String>,
    /// Only packages with every one of these tags.
    pub tags: Vec<String>,
    /// Most results to return (1 to [`MAX_LIMIT`]).
    pub limit: usize,
}

/// One search result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hit {
    /// Package name.
    pub name: String,
    /// Latest version.
    pub version: String,
    /// Description.
    pub description: String,
    /// Content id of the latest version's archive.
    pub content_id: String,
    /// BM25 score (higher is better).
    pub score: f32,
}

struct Fields {
    name: Field,
    name_exact: Field,
    version: Field,
    description: Field,
    tags: Field,
    tag: Field,
    categories: Field,
    category: Field,
    authors: Field,
    content_id: Field,
}

/// The search index.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    /// The last catalogue change applied ([`SearchIndex::applied`]); [`UNKNOWN`] when the
    /// newest commit records none.
    applied: std::sync::atomic::AtomicU64,
    fields: Fields,
    parser: QueryParser,
}

/// How a commit's payload records the last catalogue change applied.
const APPLIED_PREFIX: &str = "peerpack-applied:";

/// [`SearchIndex::applied`] when the newest commit records no change number.
const UNKNOWN: u64 = u64::MAX;

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let stemmed = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("en_stem")
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let fields = Fields {
        name: b.add_text_field("name", TEXT | STORED),
        name_exact: b.add_text_field("name_exact", STRING),
        version: b.add_text_field("version", STORED),
        description: b.add_text_field("description", stemmed.clone() | STORED),
        tags: b.add_text_field("tags", TEXT),
        // Exact values, also as fast fields: `facets` counts them over every match.
        tag: b.add_text_field("tag", STRING | FAST),
        categories: b.add_text_field("categories", TEXT),
        category: b.add_text_field("category", STRING | FAST),
        authors: b.add_text_field("authors", TEXT),
        content_id: b.add_text_field("content_id", STORED),
    };
    (b.build(), fields)
}

impl SearchIndex {
    /// Open the index in `dir`, creating it if needed. Fails if the directory holds an index
    /// with another schema or is damaged; the caller then rebuilds it.
    #[tracing::instrument(skip_all, fields(dir = %dir.display()))]
    pub fn open(dir: &Path) -> Result<Self, Error> {
        let open_err = |reason: String| Error::Open {
            path: dir.display().to_string(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        let (schema, fields) = schema();
        let mmap =
            tantivy::directory::MmapDirectory::open(dir).map_err(|e| open_err(e.to_string()))?;
        let index = Index::open_or_create(mmap, schema).map_err(|e| open_err(e.to_string()))?;
        let this = Self::from_index(index, fields)?;
        // A writer killed before its commit leaves files the last commit does not name (a
        // deletion file, segments): the next writer may want the same names. Sweep them now.
        if let Err(e) = this.lock().garbage_collect_files().wait() {
            tracing::warn!(error = %e, "could not sweep the search index's leftover files");
        }
        Ok(this)
    }

    /// An index held in memory only (benchmarks and tests).
    pub fn in_memory() -> Result<Self, Error> {
        let (schema, fields) = schema();
        Self::from_index(Index::create_in_ram(schema), fields)
    }

    fn from_index(index: Index, fields: Fields) -> Result<Self, Error> {
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let writer = index.writer(WRITER_MEMORY)?;
        let mut parser = QueryParser::for_index(
            &index,
            vec![
                fields.name,
                fields.description,
                fields.tags,
                fields.categories,
                fields.authors,
            ],
        );
        parser.set_conjunction_by_default();
        parser.set_field_boost(fields.name, 3.0);
        parser.set_field_boost(fields.tags, 2.0);
        parser.set_field_boost(fields.categories, 1.5);
        let applied = index
            .load_metas()
            .ok()
            .and_then(|m| m.payload)
            .and_then(|p| p.strip_prefix(APPLIED_PREFIX)?.parse().ok())
            .unwrap_or(UNKNOWN);
        Ok(Self {
            index,
            reader,
            applied: std::sync::atomic::AtomicU64::new(applied),
            writer: Mutex::new(writer),
            fields,
            parser,
        })
    }

    fn document(&self, r: &PackageRecord) -> TantivyDocument {
        let f = &self.fields;
        let m = &r.manifest;
        let mut doc = TantivyDocument::default();
        doc.add_text(f.name, m.name.as_str());
        doc.add_text(f.name_exact, m.name.as_str());
        doc.add_text(f.version, m.version.to_string());
        doc.add_text(f.description, &m.description);
        for t in &m.tags {
            doc.add_text(f.tags, t);
            doc.add_text(f.tag, t);
        }
        for c in &m.categories {
            doc.add_text(f.categories, c);
            doc.add_text(f.category, c);
        }
        for a in &m.authors {
            doc.add_text(f.authors, a);
        }
        doc.add_text(f.content_id, r.content_id.to_string());
        doc
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, IndexWriter> {
        // A panic while holding the writer leaves nothing half-done that a later commit could
        // expose: tantivy only publishes committed segments.
        peerpack_core::sync::lock(&self.writer)
    }

    /// Make each record the document for its name (the caller passes the latest version of
    /// each), then commit and make the change visible to searches. The commit records no
    /// applied change: the store uses [`SearchIndex::apply`].
    #[tracing::instrument(skip_all, fields(count = records.len()))]
    pub fn upsert(&self, records: &[PackageRecord]) -> Result<(), Error> {
        let mut writer = self.lock();
        for r in records {
            writer.delete_term(Term::from_field_text(
                self.fields.name_exact,
                r.name().as_str(),
            ));
            writer.add_document(self.document(r))?;
        }
        self.commit(&mut writer, None)?;
        Ok(())
    }

    /// Remove the documents of `names`, then commit.
    pub fn remove(&self, names: &[PackageName]) -> Result<(), Error> {
        let mut writer = self.lock();
        for name in names {
            writer.delete_term(Term::from_field_text(self.fields.name_exact, name.as_str()));
        }
        self.commit(&mut writer, None)?;
        Ok(())
    }

    /// Replace the whole index with `records` (the latest version of each package). With
    /// `applied`, the commit records it as the last catalogue change applied.
    #[tracing::instrument(skip_all, fields(count = records.len()))]
    pub fn rebuild(&self, records: &[PackageRecord], applied: Option<u64>) -> Result<(), Error> {
        let mut writer = self.lock();
        writer.delete_all_documents()?;
        for r in records {
            writer.add_document(self.document(r))?;
        }
        self.commit(&mut writer, applied)?;
        Ok(())
    }

    /// Apply catalogue changes up to change number `applied` in one commit, which records
    /// `applied`: each record in `latest` becomes the document for its name, and the names in
    /// `gone` leave the index.
    #[tracing::instrument(skip_all, fields(upserts = latest.len(), removals = gone.len(), applied))]
    pub fn apply(
        &self,
        latest: &[PackageRecord],
        gone: &[PackageName],
        applied: u64,
    ) -> Result<(), Error> {
        let mut writer = self.lock();
        // Changes read before what the index already holds: a newer read covered them.
        if self.applied().is_some_and(|a| applied <= a) {
            return Ok(());
        }
        for name in gone {
            writer.delete_term(Term::from_field_text(self.fields.name_exact, name.as_str()));
        }
        for r in latest {
            writer.delete_term(Term::from_field_text(
                self.fields.name_exact,
                r.name().as_str(),
            ));
            writer.add_document(self.document(r))?;
        }
        self.commit(&mut writer, Some(applied))?;
        Ok(())
    }

    /// The last catalogue change the index has applied, as its newest commit records;
    /// `None` for an index built before changes were numbered, or by [`SearchIndex::upsert`].
    pub fn applied(&self) -> Option<u64> {
        let n = self.applied.load(std::sync::atomic::Ordering::Acquire);
        (n != UNKNOWN).then_some(n)
    }

    /// Commit, recording `applied` (when given) in the commit, then make the commit visible
    /// to searches, and only then record `applied` in memory. All under the writer's lock: a
    /// caller that sees a change applied ([`SearchIndex::applied`], or an `apply` that skips
    /// work already applied) can search it at once.
    fn commit(&self, writer: &mut IndexWriter, applied: Option<u64>) -> Result<(), Error> {
        let mut prepared = writer.prepare_commit()?;
        if let Some(n) = applied {
            prepared.set_payload(&format!("{APPLIED_PREFIX}{n}"));
        }
        prepared.commit()?;
        self.reader.reload()?;
        self.applied.store(
            applied.unwrap_or(UNKNOWN),
            std::sync::atomic::Ordering::Release,
        );
        Ok(())
    }

    /// Number of packages in the index.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Run a search.
    ///
    /// Prefix and typo matches on names are a second pass, run only when the words and the
    /// exact name fill fewer than `limit` results: they cost most on the commonest words,
    /// which fill the page on their own.
    pub fn search(&self, q: &SearchQuery) -> Result<Vec<Hit>, Error> {
        let limit = q.limit.clamp(1, MAX_LIMIT);
        let hits = self.search_pass(q, limit, false)?;
        if hits.len() >= limit || q.text.trim().is_empty() {
            return Ok(hits);
        }
        self.search_pass(q, limit, true)
    }

    /// How many packages `q` matches in all (as [`SearchIndex::search`] would match them with
    /// no limit but `q.limit` deciding the second pass), and the categories and tags among
    /// them with how many carry each: the `size` commonest of each, most first, then by name.
    pub fn facets(&self, q: &SearchQuery, size: usize) -> Result<Facets, Error> {
        let limit = q.limit.clamp(1, MAX_LIMIT);
        let searcher = self.reader.searcher();
        let (mut matched, mut counts) = searcher.search(&self.query(q, false), &(Count, Tally))?;
        if matched < limit && !q.text.trim().is_empty() {
            (matched, counts) = searcher.search(&self.query(q, true), &(Count, Tally))?;
        }
        let [categories, tags] = counts.map(|m| {
            let mut v: Vec<(String, u64)> = m.into_iter().collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            v.truncate(size);
            v
        });
        Ok(Facets {
            matched: matched as u64,
            categories,
            tags,
        })
    }

    /// The query of a search: the words (and, with `near`, the name's prefix and typo
    /// matches), and the filters.
    fn query(&self, q: &SearchQuery, near: bool) -> BooleanQuery {
        let f = &self.fields;
        let mut must: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let text = q.text.trim();
        if text.is_empty() {
            must.push((Occur::Must, Box::new(AllQuery)));
        } else {
            let (parsed, _errors) = self.parser.parse_query_lenient(text);
            let key = name_key(text);
            let mut names = self.name_queries(&key);
            if !near {
                names.truncate(1);
            }
            let mut either: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Should, parsed)];
            either.extend(names.into_iter().map(|q| (Occur::Should, q)));
            must.push((Occur::Must, Box::new(BooleanQuery::new(either))));
        }
        if let Some(c) = &q.category {
            must.push((Occur::Must, term(f.category, c)));
        }
        for t in &q.tags {
            must.push((Occur::Must, term(f.tag, t)));
        }
        BooleanQuery::new(must)
    }

    fn search_pass(&self, q: &SearchQuery, limit: usize, near: bool) -> Result<Vec<Hit>, Error> {
        let f = &self.fields;
        let query = self.query(q, near);
        let searcher = self.reader.searcher();
        let top = searcher.search(&query, &TopDocs::with_limit(limit).order_by_score())?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, addr) in top {
            let doc: TantivyDocument = searcher.doc(addr)?;
            let get = |field| {
                doc.get_first(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            hits.push(Hit {
                name: get(f.name),
                version: get(f.version),
                description: get(f.description),
                content_id: get(f.content_id),
                score,
            });
        }
        Ok(hits)
    }
}

/// What [`SearchIndex::facets`] counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Facets {
    /// Packages the search matches in all.
    pub matched: u64,
    /// Categories among them, with how many carry each.
    pub categories: Vec<(String, u64)>,
    /// Tags among them, with how many carry each.
    pub tags: Vec<(String, u64)>,
}

/// Counts the values of the `category` and `tag` fast fields over the documents a query
/// matches: per segment by term ordinal, then by value across segments.
struct Tally;

/// [`Tally`] in one segment: the two columns and a count per term ordinal of each.
struct SegmentTally {
    columns: [Option<StrColumn>; 2],
    counts: [Vec<u32>; 2],
}

/// Counts by value: categories, then tags.
type Tallied = [HashMap<String, u64>; 2];

impl Collector for Tally {
    type Fruit = Tallied;
    type Child = SegmentTally;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentTally> {
        let fast = reader.fast_fields();
        let columns = [fast.str("category")?, fast.str("tag")?];
        let counts = [0, 1].map(|i| vec![0u32; columns[i].as_ref().map_or(0, |c| c.num_terms())]);
        Ok(SegmentTally { columns, counts })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Tallied>) -> tantivy::Result<Tallied> {
        let mut out = Tallied::default();
        for fruit in fruits {
            for (into, from) in out.iter_mut().zip(fruit) {
                for (value, n) in from {
                    *into.entry(value).or_default() += n;
                }
            }
        }
        Ok(out)
    }
}

impl SegmentCollector for SegmentTally {
    type Fruit = Tallied;

    fn collect(&mut self, doc: DocId, _score: Score) {
        for (column, counts) in self.columns.iter().zip(self.counts.iter_mut()) {
            if let Some(column) = column {
                for ord in column.term_ords(doc) {
                    if let Some(n) = counts.get_mut(ord as usize) {
                        *n += 1;
                    }
                }
            }
        }
    }

    fn harvest(self) -> Tallied {
        let mut out = Tallied::default();
        for ((column, counts), into) in self.columns.iter().zip(self.counts).zip(out.iter_mut()) {
            let Some(column) = column else { continue };
            // The ordinals counted, in order: the dictionary is read once, block by block,
            // where a lookup per ordinal would decompress a block each time.
            let (ords, ns): (Vec<u64>, Vec<u32>) = counts
                .into_iter()
                .enumerate()
                .filter(|(_, n)| *n > 0)
                .map(|(ord, n)| (ord as u64, n))
                .unzip();
            let mut ns = ns.into_iter();
            let read = column.dictionary().sorted_ords_to_term_cb(&ords, |term| {
                if let Some(n) = ns.next() {
                    into.insert(String::from_utf8_lossy(term).into_owned(), u64::from(n));
                }
            });
            if let Err(e) = read {
                tracing::warn!(error = %e, "a facet column's dictionary could not be read");
            }
        }
        out
    }
}

/// The query read as a package name: lower case, words joined by `-`.
fn name_key(text: &str) -> String {
    text.to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("-")
}

/// Typos forgiven in a name of `len` characters.
fn typos_for(len: usize) -> u8 {
    match len {
        0..=2 => 0,
        3..=5 => 1,
        _ => 2,
    }
}

impl SearchIndex {
    /// The name matches of `key`: exact, prefix and within a few typos, boosted in that order.
    fn name_queries(&self, key: &str) -> Vec<Box<dyn Query>> {
        let f = self.fields.name_exact;
        let term = Term::from_field_text(f, key);
        let mut out: Vec<Box<dyn Query>> = vec![Box::new(BoostQuery::new(
            Box::new(TermQuery::new(term.clone(), IndexRecordOption::Basic)),
            EXACT_NAME_BOOST,
        ))];
        // Only what could be part of a name: anything else matches no name anyway, and long
        // input would only make the automata larger.
        let plausible = !key.is_empty()
            && key.len() <= peerpack_core::limits::MAX_NAME_LEN
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !plausible {
            return out;
        }
        out.push(Box::new(BoostQuery::new(
            Box::new(FuzzyTermQuery::new_prefix(term.clone(), 0, false)),
            PREFIX_NAME_BOOST,
        )));
        let typos = typos_for(key.chars().count());
        if typos > 0 {
            out.push(Box::new(BoostQuery::new(
                Box::new(FuzzyTermQuery::new(term, typos, true)),
                FUZZY_NAME_BOOST,
            )));
        }
        out
    }

    /// Up to `limit` known names nearest to `name` (within a few typos, or starting with it),
    /// best first; never `name` itself.
    pub fn similar_names(&self, name: &str, limit: usize) -> Result<Vec<String>, Error> {
        let key = name_key(name);
        let queries: Vec<(Occur, Box<dyn Query>)> = self
            .name_queries(&key)
            .into_iter()
            .skip(1)
            .map(|q| (Occur::Should, q))
            .collect();
        if queries.is_empty() {
            return Ok(Vec::new());
        }
        let searcher = self.reader.searcher();
        let top = searcher.search(
            &BooleanQuery::new(queries),
            &TopDocs::with_limit(limit + 1).order_by_score(),
        )?;
        let mut names = Vec::with_capacity(top.len());
        for (_, addr) in top {
            let doc: TantivyDocument = searcher.doc(addr)?;
            if let Some(n) = doc.get_first(self.fields.name).and_then(|v| v.as_str())
                && n != key
            {
                names.push(n.to_owned());
            }
        }
        names.truncate(limit);
        Ok(names)
    }
}

fn term(field: Field, value: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, &value.to_lowercase()),
        IndexRecordOption::Basic,
    ))
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}
