//! Dependency resolution: from requested packages to the exact versions to install.
//!
//! For every package the resolver picks the **highest** version that satisfies every
//! requirement placed on it (by the user or by other chosen packages), follows that version's
//! dependencies, and repeats until nothing changes. The result lists dependencies before the
//! packages that need them. Errors name the packages involved:
//! - a name no version of which is known;
//! - a name whose known versions satisfy no version of all its requirements at once (each
//!   requirement is listed with who asked for it);
//! - a dependency cycle, with the path that closes it.
//!
//! A caller with a lock file passes the locked versions as preferences
//! ([`resolve_preferring`]): a locked version is kept whenever it satisfies every requirement,
//! so adding a package never moves the others.
//!
//! Resolution is pure: the caller supplies the known versions of each name.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use semver::VersionReq;

use crate::{PackageName, PackageRecord};

/// Who placed a requirement.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Requirer {
    /// The user, on the command line.
    User,
    /// A chosen package version.
    Package(PackageName, semver::Version),
}

impl fmt::Display for Requirer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User => f.write_str("the command line"),
            Self::Package(n, v) => write!(f, "{n} {v}"),
        }
    }
}

/// Why resolution failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// No version of a name is known.
    #[error(
        "no version of `{name}` is known (required by {required_by}); is it published, and is this node connected?"
    )]
    Unknown {
        /// The name.
        name: PackageName,
        /// Who asked for it.
        required_by: Requirer,
    },
    /// No known version satisfies all requirements on a name.
    #[error(
        "no version of `{name}` satisfies {}; known versions: {}",
        describe(requirements),
        list(available)
    )]
    Unsatisfiable {
        /// The name.
        name: PackageName,
        /// Every requirement on it, with who placed it.
        requirements: Vec<(VersionReq, Requirer)>,
        /// The versions known, highest first.
        available: Vec<semver::Version>,
    },
    /// The chosen versions depend on each other in a circle.
    #[error("dependency cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    /// Requirements kept changing the choice (a pathological catalogue).
    #[error("dependency resolution did not settle after {0} steps")]
    NoProgress(usize),
}

fn describe(reqs: &[(VersionReq, Requirer)]) -> String {
    reqs.iter()
        .map(|(r, by)| format!("{r} (required by {by})"))
        .collect::<Vec<_>>()
        .join(" and ")
}

fn list(vs: &[semver::Version]) -> String {
    if vs.is_empty() {
        "none".into()
    } else {
        vs.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Most steps before giving up.
const MAX_STEPS: usize = 10_000;

/// Resolve `roots` against the versions `available` returns for each name. Returns the chosen
/// records, every dependency before its dependents.
pub fn resolve(
    roots: &[(PackageName, VersionReq)],
    available: impl Fn(&PackageName) -> Vec<PackageRecord>,
) -> Result<Vec<PackageRecord>, ResolveError> {
    resolve_preferring(roots, available, &BTreeMap::new())
}

/// [`resolve`], keeping the `preferred` version of a name whenever it is available and
/// satisfies every requirement on the name; otherwise the highest that does.
pub fn resolve_preferring(
    roots: &[(PackageName, VersionReq)],
    available: impl Fn(&PackageName) -> Vec<PackageRecord>,
    preferred: &BTreeMap<PackageName, semver::Version>,
) -> Result<Vec<PackageRecord>, ResolveError> {
    // Requirements on each name, keyed by who placed them (so a changed choice can withdraw
    // its old requirements).
    let mut reqs: BTreeMap<PackageName, BTreeMap<Requirer, VersionReq>> = BTreeMap::new();
    let mut chosen: BTreeMap<PackageName, PackageRecord> = BTreeMap::new();
    let mut queue: VecDeque<PackageName> = VecDeque::new();
    for (name, req) in roots {
        reqs.entry(name.clone())
            .or_default()
            .insert(Requirer::User, req.clone());
        queue.push_back(name.clone());
    }
    let mut cache: BTreeMap<PackageName, Vec<PackageRecord>> = BTreeMap::new();
    let mut steps = 0;
    while let Some(name) = queue.pop_front() {
        steps += 1;
        if steps > MAX_STEPS {
            return Err(ResolveError::NoProgress(MAX_STEPS));
        }
        let on_name = reqs.get(&name).cloned().unwrap_or_default();
        if on_name.is_empty() {
            // Nobody needs it any more (a requirer changed its mind).
            if let Some(old) = chosen.remove(&name) {
                withdraw(&mut reqs, &mut queue, &old);
            }
            continue;
        }
        let candidates = cache.entry(name.clone()).or_insert_with(|| {
            let mut v = available(&name);
            v.retain(|r| r.name() == &name);
            v.sort_by(|a, b| b.version().cmp(a.version()));
            v
        });
        if candidates.is_empty() {
            let required_by = on_name.keys().next().cloned().unwrap_or(Requirer::User);
            return Err(ResolveError::Unknown { name, required_by });
        }
        let fits = |c: &&PackageRecord| on_name.values().all(|r| r.matches(c.version()));
        let pick = preferred
            .get(&name)
            .and_then(|v| candidates.iter().filter(fits).find(|c| c.version() == v))
            .or_else(|| candidates.iter().find(fits))
            .cloned()
            .ok_or_else(|| ResolveError::Unsatisfiable {
                name: name.clone(),
                requirements: on_name
                    .iter()
                    .map(|(by, r)| (r.clone(), by.clone()))
                    .collect(),
                available: candidates.iter().map(|c| c.version().clone()).collect(),
            })?;
        if chosen
            .get(&name)
            .is_some_and(|c| c.version() == pick.version())
        {
            continue;
        }
        if let Some(old) = chosen.insert(name.clone(), pick.clone()) {
            withdraw(&mut reqs, &mut queue, &old);
        }
        let by = Requirer::Package(name.clone(), pick.version().clone());
        for (dep, req) in &pick.manifest.dependencies {
            reqs.entry(dep.clone())
                .or_default()
                .insert(by.clone(), req.clone());
            queue.push_back(dep.clone());
        }
    }
    order(chosen)
}

/// Remove the requirements `old` placed, and revisit the names they were on.
fn withdraw(
    reqs: &mut BTreeMap<PackageName, BTreeMap<Requirer, VersionReq>>,
    queue: &mut VecDeque<PackageName>,
    old: &PackageRecord,
) {
    let by = Requirer::Package(old.name().clone(), old.version().clone());
    for dep in old.manifest.dependencies.keys() {
        if let Some(m) = reqs.get_mut(dep) {
            m.remove(&by);
        }
        queue.push_back(dep.clone());
    }
}

/// Dependencies first (depth-first post-order); a back edge is a cycle.
fn order(chosen: BTreeMap<PackageName, PackageRecord>) -> Result<Vec<PackageRecord>, ResolveError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit(
        name: &PackageName,
        chosen: &BTreeMap<PackageName, PackageRecord>,
        marks: &mut BTreeMap<PackageName, Mark>,
        path: &mut Vec<PackageName>,
        out: &mut Vec<PackageRecord>,
    ) -> Result<(), ResolveError> {
        match marks.get(name) {
            Some(Mark::Done) => return Ok(()),
            Some(Mark::Visiting) => {
                let start = path.iter().position(|n| n == name).unwrap_or(0);
                let mut cycle: Vec<String> = path[start..]
                    .iter()
                    .map(|n| format!("{n} {}", chosen[n].version()))
                    .collect();
                cycle.push(format!("{name} {}", chosen[name].version()));
                return Err(ResolveError::Cycle(cycle));
            }
            None => {}
        }
        let Some(record) = chosen.get(name) else {
            return Ok(());
        };
        marks.insert(name.clone(), Mark::Visiting);
        path.push(name.clone());
        for dep in record.manifest.dependencies.keys() {
            visit(dep, chosen, marks, path, out)?;
        }
        path.pop();
        marks.insert(name.clone(), Mark::Done);
        out.push(record.clone());
        Ok(())
    }
    let mut marks = BTreeMap::new();
    let mut out = Vec::with_capacity(chosen.len());
    for name in chosen.keys() {
        visit(name, &chosen, &mut marks, &mut Vec::new(), &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::record::RecordFields;
    use crate::{ContentId, Manifest, PublisherKey};

    fn rec(name: &str, version: &str, deps: &[(&str, &str)]) -> PackageRecord {
        let deps: String = deps
            .iter()
            .map(|(n, r)| format!("{n} = \"{r}\"\n"))
            .collect();
        let text = format!(
            "[package]\nname = \"{name}\"\nversion = \"{version}\"\ndescription = \"d\"\nlicense = \"MIT\"\nauthors = [\"a\"]\n[dependencies]\n{deps}"
        );
        PackageRecord::sign(
            RecordFields {
                manifest: Manifest::parse(&text, Path::new("peerpack.toml")).unwrap(),
                content_id: ContentId::of(format!("{name}{version}").as_bytes()),
                archive_size: 1,
                seq: 1,
                published_at: 1,
            },
            &PublisherKey::from_secret_bytes(&[1; 32]),
        )
        .unwrap()
    }

    fn catalogue(records: Vec<PackageRecord>) -> impl Fn(&PackageName) -> Vec<PackageRecord> {
        move |n| records.iter().filter(|r| r.name() == n).cloned().collect()
    }

    fn root(name: &str, req: &str) -> Vec<(PackageName, VersionReq)> {
        vec![(
            PackageName::new(name).unwrap(),
            VersionReq::parse(req).unwrap(),
        )]
    }

    fn names(rs: &[PackageRecord]) -> Vec<String> {
        rs.iter()
            .map(|r| format!("{} {}", r.name(), r.version()))
            .collect()
    }

    #[test]
    fn picks_the_highest_matching_versions_dependencies_first() {
        let cat = catalogue(vec![
            rec("app", "1.0.0", &[("ci", "^1.1"), ("docker", "^2")]),
            rec("app", "2.0.0", &[]),
            rec("ci", "1.0.0", &[]),
            rec("ci", "1.3.0", &[]),
            rec("ci", "2.0.0", &[]),
            rec("docker", "2.0.3", &[("ci", "^1")]),
            rec("docker", "3.0.0", &[]),
        ]);
        let got = resolve(&root("app", "^1"), cat).unwrap();
        assert_eq!(names(&got), ["ci 1.3.0", "docker 2.0.3", "app 1.0.0"]);
    }

    #[test]
    fn a_tighter_requirement_lowers_a_shared_dependency() {
        let cat = catalogue(vec![
            rec("app", "1.0.0", &[("a", "*"), ("b", "*")]),
            rec("a", "1.0.0", &[("ci", ">=1.0")]),
            rec("b", "1.0.0", &[("ci", "<1.3")]),
            rec("ci", "1.0.0", &[]),
            rec("ci", "1.2.0", &[]),
            rec("ci", "1.5.0", &[]),
        ]);
        let got = resolve(&root("app", "*"), cat).unwrap();
        assert!(
            names(&got).contains(&"ci 1.2.0".to_owned()),
            "{:?}",
            names(&got)
        );
    }

    #[test]
    fn an_unsatisfiable_requirement_names_everyone_involved() {
        let cat = catalogue(vec![
            rec("app", "1.0.0", &[("a", "*"), ("ci", "^2")]),
            rec("a", "1.0.0", &[("ci", "^1")]),
            rec("ci", "1.4.0", &[]),
            rec("ci", "2.1.0", &[]),
        ]);
        let err = resolve(&root("app", "*"), cat).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ResolveError::Unsatisfiable { .. }), "{text}");
        for part in ["`ci`", "^2", "app 1.0.0", "^1", "a 1.0.0", "2.1.0, 1.4.0"] {
            assert!(text.contains(part), "{part:?} missing from: {text}");
        }
    }

    #[test]
    fn an_unknown_dependency_names_who_needs_it() {
        let cat = catalogue(vec![rec("app", "1.0.0", &[("ghost", "^1")])]);
        let text = resolve(&root("app", "*"), cat).unwrap_err().to_string();
        assert!(
            text.contains("`ghost`") && text.contains("app 1.0.0"),
            "{text}"
        );
        let text = resolve(&root("nothing", "*"), catalogue(vec![]))
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("`nothing`") && text.contains("command line"),
            "{text}"
        );
    }

    #[test]
    fn a_preferred_version_is_kept_while_it_fits() {
        let cat = || {
            catalogue(vec![
                rec("app", "1.0.0", &[("ci", "^1")]),
                rec("ci", "1.3.0", &[]),
                rec("ci", "1.4.0", &[]),
                rec("ci", "2.0.0", &[]),
            ])
        };
        let ci = PackageName::new("ci").unwrap();
        let mut pref = BTreeMap::new();
        pref.insert(ci.clone(), semver::Version::new(1, 3, 0));
        let got = resolve_preferring(&root("app", "*"), cat(), &pref).unwrap();
        assert_eq!(names(&got), ["ci 1.3.0", "app 1.0.0"]);
        // Without the preference the highest fitting version wins.
        let got = resolve(&root("app", "*"), cat()).unwrap();
        assert_eq!(names(&got), ["ci 1.4.0", "app 1.0.0"]);
        // A preference that no longer fits gives way.
        pref.insert(ci, semver::Version::new(2, 0, 0));
        let got = resolve_preferring(&root("app", "*"), cat(), &pref).unwrap();
        assert_eq!(names(&got), ["ci 1.4.0", "app 1.0.0"]);
    }

    #[test]
    fn a_cycle_fails_with_its_path() {
        let cat = catalogue(vec![
            rec("a", "1.0.0", &[("b", "*")]),
            rec("b", "1.0.0", &[("c", "*")]),
            rec("c", "1.0.0", &[("a", "^1")]),
        ]);
        let err = resolve(&root("a", "*"), cat).unwrap_err();
        assert_eq!(
            err,
            ResolveError::Cycle(vec![
                "a 1.0.0".into(),
                "b 1.0.0".into(),
                "c 1.0.0".into(),
                "a 1.0.0".into()
            ])
        );
        assert_eq!(
            err.to_string(),
            "dependency cycle: a 1.0.0 -> b 1.0.0 -> c 1.0.0 -> a 1.0.0"
        );
    }

    #[test]
    fn a_requirement_withdrawn_by_a_new_choice_no_longer_binds() {
        // app first picks lib 2.0.0 (which needs old ^1), then util's requirement moves lib to
        // 1.0.0, whose dependencies differ; old's requirement from lib 2.0.0 must go away.
        let cat = catalogue(vec![
            rec("app", "1.0.0", &[("lib", "*"), ("util", "*")]),
            rec("util", "1.0.0", &[("lib", "<2")]),
            rec("lib", "2.0.0", &[("old", "^1")]),
            rec("lib", "1.0.0", &[]),
            rec("old", "1.0.0", &[]),
        ]);
        let got = names(&resolve(&root("app", "*"), cat).unwrap());
        assert!(
            got.contains(&"lib 1.0.0".to_owned()) && !got.iter().any(|n| n.starts_with("old")),
            "{got:?}"
        );
    }
}
