//! Scraping a role's operations listener: `/healthz`, `/readyz`, and `/metrics` parsed from
//! the Prometheus text format.

use std::collections::BTreeMap;

use serde_json::Value;

/// One scrape: every sample, by metric name and its labels.
pub struct Scrape(Vec<(String, BTreeMap<String, String>, f64)>);

impl Scrape {
    pub fn parse(text: &str) -> Self {
        let mut samples = Vec::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let Some((key, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = match key.split_once('{') {
                Some((name, rest)) => (name, labels(rest.trim_end_matches('}'))),
                None => (key, BTreeMap::new()),
            };
            samples.push((name.to_owned(), labels, value));
        }
        Self(samples)
    }

    /// The sample of `name` whose labels include every one of `with`.
    pub fn get(&self, name: &str, with: &[(&str, &str)]) -> Option<f64> {
        self.0
            .iter()
            .find(|(n, l, _)| {
                n == name
                    && with
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| *v)
    }

    /// A consumer's gauge (`callfleet_jetstream_consumer_<what>`).
    pub fn consumer(&self, what: &str, stream: &str, consumer: &str) -> Option<f64> {
        self.get(
            &format!("callfleet_jetstream_consumer_{what}"),
            &[("stream", stream), ("consumer", consumer)],
        )
    }
}

fn labels(s: &str) -> BTreeMap<String, String> {
    s.split("\",")
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((k.trim().to_owned(), v.trim_matches('"').to_owned()))
        })
        .collect()
}

/// GET `http://<addr><path>`: status and body, or `None` when nothing answers.
pub async fn get(http: &reqwest::Client, addr: &str, path: &str) -> Option<(u16, String)> {
    let resp = http.get(format!("http://{addr}{path}")).send().await.ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.text().await.ok()?))
}

pub async fn scrape(http: &reqwest::Client, addr: &str) -> Option<Scrape> {
    match get(http, addr, "/metrics").await? {
        (200, text) => Some(Scrape::parse(&text)),
        _ => None,
    }
}

/// `/readyz`'s status and JSON body.
pub async fn readyz(http: &reqwest::Client, addr: &str) -> Option<(u16, Value)> {
    let (status, body) = get(http, addr, "/readyz").await?;
    Some((status, serde_json::from_str(&body).unwrap_or(Value::Null)))
}

#[test]
fn the_parser_reads_labels_in_any_order() {
    let s = Scrape::parse(
        "# HELP x y\n# TYPE x gauge\nx{consumer=\"agents\",stream=\"CALL_JOBS\"} 3\ny 1\n",
    );
    assert_eq!(s.consumer("x", "CALL_JOBS", "agents"), None);
    assert_eq!(
        s.get("x", &[("stream", "CALL_JOBS"), ("consumer", "agents")]),
        Some(3.0)
    );
    assert_eq!(s.get("y", &[]), Some(1.0));
}
