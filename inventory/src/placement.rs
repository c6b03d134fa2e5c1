//! Placement: a node's `location` ("region.zone") and Restate's location-aware replication
//! (`{zone: 2, node: 3}`), read the way restate-server 1.7 reads them
//! (`crates/types/src/locality/node_location.rs`, `replication/replication_property.rs`), so
//! that the inventory refuses what the server would refuse, before any host is touched.

use std::collections::BTreeSet;
use std::fmt;

/// Replication: how many copies, and over how many zones and regions at least.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Replication {
    /// Copies of each log record and partition (Restate's `node` scope).
    pub nodes: u32,
    pub zones: Option<u32>,
    pub regions: Option<u32>,
    /// Whether `node` was written (Restate prints the scopes it was given, and only those).
    #[serde(skip)]
    node_given: bool,
}

impl Replication {
    pub fn nodes(n: u32) -> Self {
        Replication {
            nodes: n,
            zones: None,
            regions: None,
            node_given: true,
        }
    }

    /// The same copies over the same zones and regions, however written.
    pub fn same_as(&self, other: &Replication) -> bool {
        (self.nodes, self.zones, self.regions) == (other.nodes, other.zones, other.regions)
    }

    /// Whether copies must spread over zones or regions (the nodes then need locations).
    pub fn is_location_aware(&self) -> bool {
        self.zones.is_some() || self.regions.is_some()
    }
}

/// As Restate prints it: the scopes given, smallest first (`{node: 3, zone: 2}`, `{node: 2}`).
impl fmt::Display for Replication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scopes = [
            ("node", Some(self.nodes).filter(|_| self.node_given)),
            ("zone", self.zones),
            ("region", self.regions),
        ];
        let given: Vec<String> = scopes
            .iter()
            .filter_map(|(scope, n)| n.map(|n| format!("{scope}: {n}")))
            .collect();
        write!(f, "{{{}}}", given.join(", "))
    }
}

/// Why a replication text is not one Restate takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReplicationError(pub String);

/// `3` or `"{zone: 2, node: 3}"` (scopes `node`, `zone`, `region`, any order, each at least 1;
/// a larger scope may not ask for more copies than a smaller one). A scope left out takes the
/// copies of the next smaller one that is given: `{zone: 2}` is 2 copies in 2 zones.
pub fn parse_replication(text: &str) -> Result<Replication, ReplicationError> {
    let text = text.trim();
    if let Ok(n) = text.parse::<u32>() {
        return plain(n);
    }
    let inner = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(|| {
            ReplicationError(format!(
                "`{text}` is neither a number nor of the form {{zone: 2, node: 3}}"
            ))
        })?;
    let (mut node, mut zone, mut region) = (None, None, None);
    for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (scope, factor) = part.split_once(':').ok_or_else(|| {
            ReplicationError(format!("`{part}` is not `scope: copies`, e.g. `zone: 2`"))
        })?;
        let factor: u32 = factor
            .trim()
            .parse()
            .ok()
            .filter(|f| (1..=u32::from(u8::MAX)).contains(f))
            .ok_or_else(|| {
                ReplicationError(format!(
                    "`{}` in `{part}` is not a number of copies from 1 to 255",
                    factor.trim()
                ))
            })?;
        let slot = match scope.trim().to_ascii_lowercase().as_str() {
            "node" => &mut node,
            "zone" => &mut zone,
            "region" => &mut region,
            other => {
                return Err(ReplicationError(format!(
                    "`{other}` is not a replication scope; use node, zone or region"
                )));
            }
        };
        if slot.replace(factor).is_some() {
            return Err(ReplicationError(format!(
                "scope `{}` is given twice",
                scope.trim()
            )));
        }
    }
    // Restate's rule: a smaller scope never holds fewer copies than a larger one.
    let given = [("node", node), ("zone", zone), ("region", region)];
    for (i, (small, s)) in given.iter().enumerate() {
        for (large, l) in &given[i + 1..] {
            if let (Some(s), Some(l)) = (s, l)
                && l > s
            {
                return Err(ReplicationError(format!(
                    "{{{large}: {l}}} asks for more copies than {{{small}: {s}}}: each {large} holds copies on nodes, so {small} needs at least {l}"
                )));
            }
        }
    }
    let nodes = node.or(zone).or(region).ok_or_else(|| {
        ReplicationError("no scope given; write e.g. {zone: 2, node: 3}".to_string())
    })?;
    Ok(Replication {
        nodes,
        zones: zone,
        regions: region,
        node_given: node.is_some(),
    })
}

fn plain(n: u32) -> Result<Replication, ReplicationError> {
    if n == 0 {
        return Err(ReplicationError(
            "replication 0 is not a positive number".to_string(),
        ));
    }
    Ok(Replication::nodes(n))
}

/// A node's place: `region` or `region.zone`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Location {
    pub region: String,
    pub zone: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.zone {
            Some(zone) => write!(f, "{}.{zone}", self.region),
            None => f.write_str(&self.region),
        }
    }
}

/// `region.zone` or `region`; labels without spaces or `:` (Restate refuses those), at most two.
pub fn parse_location(text: &str) -> Result<Location, String> {
    let labels: Vec<&str> = text.split('.').collect();
    if labels.len() > 2 {
        return Err(format!(
            "`{text}` has {} labels; a location is `region.zone` or `region`",
            labels.len()
        ));
    }
    if let Some(bad) = labels
        .iter()
        .find(|l| l.is_empty() || l.contains(|c: char| c.is_whitespace() || c == ':'))
    {
        return Err(format!(
            "`{text}`: the label `{bad}` is empty or has a space or `:`; write `region.zone`, e.g. \"eu-west-1.eu-west-1a\""
        ));
    }
    Ok(Location {
        region: labels[0].to_string(),
        zone: labels.get(1).map(|z| z.to_string()),
    })
}

/// Why hosts placed at `locations` (`None`: no location) cannot hold `replication`; `None`
/// when they can. `holders` names what the hosts hold (e.g. "the `worker` role (partitions)").
pub fn shortfall(
    replication: &Replication,
    hosts: &[(&str, Option<&Location>)],
    holders: &str,
) -> Option<String> {
    if !replication.is_location_aware() {
        return None;
    }
    let unplaced: Vec<&str> = hosts
        .iter()
        .filter(|(_, l)| match l {
            None => true,
            Some(l) => replication.zones.is_some() && l.zone.is_none(),
        })
        .map(|(name, _)| *name)
        .collect();
    if !unplaced.is_empty() {
        let needs = if replication.zones.is_some() {
            "region.zone"
        } else {
            "region"
        };
        return Some(format!(
            "replication {replication} places copies by location, but {} {} no `location = \"{needs}\"`",
            unplaced.join(", "),
            if unplaced.len() == 1 { "has" } else { "have" }
        ));
    }
    let zones: BTreeSet<(&str, Option<&str>)> = hosts
        .iter()
        .filter_map(|(_, l)| l.map(|l| (l.region.as_str(), l.zone.as_deref())))
        .collect();
    let regions: BTreeSet<&str> = zones.iter().map(|(r, _)| *r).collect();
    for (asked, have, scope) in [
        (replication.zones, zones.len(), "zones"),
        (replication.regions, regions.len(), "regions"),
    ] {
        if let Some(asked) = asked
            && (have as u64) < u64::from(asked)
        {
            return Some(format!(
                "replication {replication} needs hosts with {holders} in {asked} {scope}, the inventory has them in {have}"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_as_restate_reads_it() {
        let r = |nodes, zones, regions| {
            Ok(Replication {
                nodes,
                zones,
                regions,
                node_given: false,
            })
        };
        let cases: Vec<(&str, Result<Replication, &str>)> = vec![
            ("2", r(2, None, None)),
            ("{node: 2}", r(2, None, None)),
            ("{zone: 2, node: 3}", r(3, Some(2), None)),
            ("{node:3,zone:2}", r(3, Some(2), None)),
            ("{ Zone: 2 }", r(2, Some(2), None)),
            ("{region: 2, zone: 2, node: 4}", r(4, Some(2), Some(2))),
            ("{region: 1, zone: 3}", r(3, Some(3), Some(1))),
            ("0", Err("not a positive number")),
            ("{zone: 3, node: 2}", Err("more copies than")),
            ("{zone: 0}", Err("from 1 to 255")),
            ("{rack: 2}", Err("not a replication scope")),
            ("{zone: 2, zone: 3}", Err("given twice")),
            ("{}", Err("no scope given")),
            ("zone: 2", Err("neither a number")),
            ("{zone 2}", Err("not `scope: copies`")),
        ];
        for (text, want) in cases {
            match (parse_replication(text), want) {
                (Ok(got), Ok(want)) => assert!(got.same_as(&want), "{text}: {got:?}"),
                (Err(got), Err(needle)) => assert!(got.0.contains(needle), "{text}: {got}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn replication_prints_as_the_server_does() {
        let text = |t: &str| parse_replication(t).map(|r| r.to_string());
        assert_eq!(text("2"), Ok("{node: 2}".to_string()));
        assert_eq!(
            text("{zone: 2, node: 3}"),
            Ok("{node: 3, zone: 2}".to_string())
        );
        assert_eq!(text("{region: 2}"), Ok("{region: 2}".to_string()));
        assert_eq!(
            text("{region: 1, node: 2, zone: 2}"),
            Ok("{node: 2, zone: 2, region: 1}".to_string())
        );
    }

    #[test]
    fn locations() {
        let ok = |t: &str, region: &str, zone: Option<&str>| {
            assert_eq!(
                parse_location(t),
                Ok(Location {
                    region: region.into(),
                    zone: zone.map(Into::into)
                }),
                "{t}"
            )
        };
        ok("eu.a", "eu", Some("a"));
        ok("us-east-2", "us-east-2", None);
        for bad in ["", "eu.a.r1", ".a", "eu.", "eu a.b", "eu:1.a"] {
            assert!(parse_location(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn enough_zones_and_regions() {
        let loc = |t: &str| parse_location(t).ok();
        let (a1, a2, b1, c1, eu) = (
            loc("r1.a"),
            loc("r1.b"),
            loc("r2.a"),
            loc("r3.c"),
            loc("r1"),
        );
        // (replication, each host's location, refused because)
        type Case = (&'static str, Vec<Option<Location>>, Option<&'static str>);
        let cases: Vec<Case> = vec![
            ("2", vec![None, None], None),
            (
                "{zone: 2, node: 3}",
                vec![a1.clone(), a2.clone(), a1.clone()],
                None,
            ),
            (
                "{zone: 3, node: 3}",
                vec![a1.clone(), a2.clone(), a1.clone()],
                Some("in 3 zones, the inventory has them in 2"),
            ),
            (
                "{zone: 2}",
                vec![a1.clone(), None],
                Some("n2 has no `location = \"region.zone\"`"),
            ),
            ("{zone: 2}", vec![a1.clone(), eu.clone()], Some("n2 has no")),
            // The same zone name in two regions is two zones.
            ("{zone: 2}", vec![a1.clone(), b1.clone()], None),
            (
                "{region: 2}",
                vec![a1.clone(), a2.clone()],
                Some("in 2 regions"),
            ),
            ("{region: 2}", vec![eu.clone(), c1.clone()], None),
        ];
        for (text, locations, want) in cases {
            let replication = parse_replication(text).expect("valid");
            let names: Vec<String> = (1..=locations.len()).map(|i| format!("n{i}")).collect();
            let hosts: Vec<(&str, Option<&Location>)> = names
                .iter()
                .map(String::as_str)
                .zip(locations.iter().map(Option::as_ref))
                .collect();
            let got = shortfall(&replication, &hosts, "the `worker` role");
            match (want, &got) {
                (None, None) => {}
                (Some(needle), Some(why)) if why.contains(needle) => {}
                _ => panic!("{text} {locations:?}: want {want:?}, got {got:?}"),
            }
        }
    }
}
