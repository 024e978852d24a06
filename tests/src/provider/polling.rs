//! The stand-in's read side: `GET /v1/predictions/{id}` and `GET /v1/predictions`, over
//! the Prediction objects it created ([`super::predictions::PredictionState::records`]),
//! each as its create call answered it and, once completed, with its terminal status.
//!
//! | route | answer |
//! |---|---|
//! | `GET /v1/predictions/{id}` | 200, the Prediction object (<https://docs.skytells.ai/prediction>): `id`, `status`, `model` as `{name, type}`, `input`, `output` (one string for one output, else a list; `null` until completed), `error`, `created_at`, `started_at`, `completed_at`, `metrics`; 404 for an unknown id |
//! | `GET /v1/predictions?page&per_page&from&to` | 200, `{"data": [...], "pagination": {"current_page", "per_page", "total", "last_page"}}`, newest first; 400 for a `per_page` outside 1 to 50, a `page` below 1, or a date that is neither `YYYY-MM-DD` nor `YYYY-MM-DDTHH:MM:SSZ` |
//!
//! **The list's shape** is the provider SDK's `PaginatedResponse<T>` (`Skytells/ts-sdk`,
//! `src/types/shared.types.ts`): `data` and a `pagination` object. The API reference also
//! shows a bare array; the stand-in serves the SDK's envelope, because it is what the
//! provider's own client parses, and a bare array carries no `total` or `last_page`, so a
//! sweep could not know it has read every page. `from` and `to` bound `created_at`, both
//! inclusive (a date `to` runs to the end of its day); `per_page` defaults to 10, `page`
//! to 1.
//!
//! **Errors** have the shape of the SDK's `ApiError` (same file):
//! `{"status": false, "response": …, "error": {"http_status", "message", "details",
//! "error_id"}}` with `error_id` `PREDICTION_NOT_FOUND` (404) or `INVALID_PARAMETER`
//! (400); a missing or revoked key is 401 `UNAUTHORIZED`, as on the create call.

use std::sync::Mutex;

use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{json, Value};

use super::{lock, Body, State};

/// Largest `per_page` the provider takes.
pub const MAX_PER_PAGE: u32 = 50;
/// `per_page` when none is given.
pub const DEFAULT_PER_PAGE: u32 = 10;

/// A checked list query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// The page, from 1.
    pub page: u32,
    /// Predictions per page, 1 to [`MAX_PER_PAGE`].
    pub per_page: u32,
    /// The earliest `created_at`, RFC 3339 UTC, inclusive.
    pub from: Option<String>,
    /// The latest `created_at`, RFC 3339 UTC, inclusive.
    pub to: Option<String>,
}

/// `YYYY-MM-DD` (the day's first second, or its last when `end`) or
/// `YYYY-MM-DDTHH:MM:SSZ`, as RFC 3339 UTC; `None` for anything else.
fn bound(v: &str, end: bool) -> Option<String> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let b = v.as_bytes();
    let date_ok = v.len() >= 10
        && digits(&v[0..4])
        && b[4] == b'-'
        && digits(&v[5..7])
        && b[7] == b'-'
        && digits(&v[8..10]);
    match v.len() {
        10 if date_ok => Some(format!(
            "{v}T{}Z",
            if end { "23:59:59" } else { "00:00:00" }
        )),
        20 if date_ok
            && b[10] == b'T'
            && digits(&v[11..13])
            && b[13] == b':'
            && digits(&v[14..16])
            && b[16] == b':'
            && digits(&v[17..19])
            && b[19] == b'Z' =>
        {
            Some(v.to_owned())
        }
        _ => None,
    }
}

/// Checks the list's query string; `Err` is the message of a 400.
pub fn parse_query(query: &str) -> Result<ListQuery, String> {
    let mut q = ListQuery {
        page: 1,
        per_page: DEFAULT_PER_PAGE,
        from: None,
        to: None,
    };
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "page" => {
                q.page = v
                    .parse()
                    .ok()
                    .filter(|p| *p >= 1)
                    .ok_or_else(|| format!("page must be a whole number from 1, not {v:?}"))?
            }
            "per_page" => {
                q.per_page = v
                    .parse()
                    .ok()
                    .filter(|p| (1..=MAX_PER_PAGE).contains(p))
                    .ok_or_else(|| {
                        format!("per_page must be from 1 to {MAX_PER_PAGE}, not {v:?}")
                    })?
            }
            "from" | "to" => {
                let b = bound(v, k == "to").ok_or_else(|| {
                    format!("{k} must be YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, not {v:?}")
                })?;
                if k == "from" {
                    q.from = Some(b);
                } else {
                    q.to = Some(b);
                }
            }
            _ => {}
        }
    }
    Ok(q)
}

/// One page of `records` (in creation order) for `q`, newest first, in the SDK's
/// `PaginatedResponse` envelope.
pub fn list(records: &[Value], q: &ListQuery) -> Value {
    let within = |p: &&Value| {
        let at = p["created_at"].as_str().unwrap_or_default();
        q.from.as_deref().is_none_or(|f| at >= f) && q.to.as_deref().is_none_or(|t| at <= t)
    };
    let matching: Vec<&Value> = records.iter().rev().filter(within).collect();
    let total = matching.len() as u64;
    let per_page = u64::from(q.per_page);
    let last_page = total.div_ceil(per_page).max(1);
    let skip = (u64::from(q.page) - 1).saturating_mul(per_page);
    let data: Vec<Value> = matching
        .into_iter()
        .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        .take(q.per_page as usize)
        .cloned()
        .collect();
    json!({
        "data": data,
        "pagination": {
            "current_page": q.page,
            "per_page": q.per_page,
            "total": total,
            "last_page": last_page,
        },
    })
}

/// An error in the SDK's `ApiError` shape.
pub fn api_error(status: u16, error_id: &str, message: &str) -> Value {
    json!({
        "status": false,
        "response": message,
        "error": {
            "http_status": status,
            "message": message,
            "details": format!("stand-in provider: {message}"),
            "error_id": error_id,
        },
    })
}

/// `p`, completed at `now` (Unix seconds) with `outputs`: `succeeded`, its output one
/// string for one output and a list otherwise, `started_at` its creation, `metrics` with
/// its `predict_time`.
pub fn complete(p: &mut Value, outputs: &[String], now: i64) {
    let at = hookvault_core::time::rfc3339(now);
    let output = match outputs {
        [one] => json!(one),
        many => json!(many),
    };
    p["status"] = json!("succeeded");
    p["output"] = output;
    p["started_at"] = p["created_at"].clone();
    p["completed_at"] = json!(at);
    p["updated_at"] = json!(at);
    p["metrics"] = json!({"predict_time": 0.3});
}

/// `p`, failed at `now` (Unix seconds) with the error `message`: `failed`, no output,
/// `started_at` its creation.
pub fn fail(p: &mut Value, message: &str, now: i64) {
    let at = hookvault_core::time::rfc3339(now);
    p["status"] = json!("failed");
    p["output"] = Value::Null;
    p["error"] = json!(message);
    p["started_at"] = p["created_at"].clone();
    p["completed_at"] = json!(at);
    p["updated_at"] = json!(at);
}

/// Serves `GET /v1/predictions` and `GET /v1/predictions/{id}`.
pub fn route(req: &Request<Incoming>, state: &Mutex<State>) -> Response<Body> {
    let answer = |code: u16, v: &Value| crate::process::json_response(code, v, &[]);
    let api_key = req
        .headers()
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let s = lock(state);
    if !s.keys.keys.iter().any(|k| k.key == api_key && !k.revoked) {
        let (code, body) = super::predictions::error_body("UNAUTHORIZED");
        return answer(code, &body);
    }
    let records = &s.predictions.records;
    match req.uri().path().strip_prefix("/v1/predictions/") {
        Some(id) => match records.iter().find(|p| p["id"] == id) {
            Some(p) => answer(200, p),
            None => answer(
                404,
                &api_error(
                    404,
                    "PREDICTION_NOT_FOUND",
                    &format!("no prediction {id:?}"),
                ),
            ),
        },
        None => match parse_query(req.uri().query().unwrap_or_default()) {
            Ok(q) => answer(200, &list(records, &q)),
            Err(why) => answer(400, &api_error(400, "INVALID_PARAMETER", &why)),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::provider::delivery::{Delivery, Loss};
    use crate::provider::keys::INITIAL_API_KEY;
    use crate::provider::Provider;

    fn records() -> Vec<Value> {
        (1..=5)
            .map(|i| json!({"id": format!("pred_{i}"), "created_at": format!("2026-12-0{i}T12:00:00Z")}))
            .collect()
    }

    fn ids(page: &Value) -> Vec<&str> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn the_list_is_paginated_newest_first_in_the_sdk_envelope() {
        let q = |s: &str| parse_query(s).unwrap();
        let page = list(&records(), &q("per_page=2"));
        assert_eq!(ids(&page), ["pred_5", "pred_4"]);
        assert_eq!(
            page["pagination"],
            json!({"current_page": 1, "per_page": 2, "total": 5, "last_page": 3})
        );
        assert_eq!(ids(&list(&records(), &q("per_page=2&page=3"))), ["pred_1"]);
        assert!(ids(&list(&records(), &q("per_page=2&page=4"))).is_empty());
        assert_eq!(q(""), q("page=1&per_page=10"), "the defaults");
        // Dates bound created_at, both inclusive; a date `to` runs to its day's end.
        let within = list(&records(), &q("from=2026-12-02&to=2026-12-04&per_page=50"));
        assert_eq!(ids(&within), ["pred_4", "pred_3", "pred_2"]);
        assert_eq!(within["pagination"]["total"], 3);
        let exact = q("from=2026-12-02T12:00:01Z&to=2026-12-04T12:00:00Z");
        assert_eq!(ids(&list(&records(), &exact)), ["pred_4", "pred_3"]);
        let none = list(&records(), &q("from=2027-01-01"));
        assert_eq!(
            none["pagination"],
            json!({"current_page": 1, "per_page": 10, "total": 0, "last_page": 1})
        );
    }

    #[test]
    fn per_page_outside_1_to_50_and_bad_pages_or_dates_are_refused() {
        for bad in [
            "per_page=0",
            "per_page=51",
            "per_page=-1",
            "per_page=x",
            "page=0",
            "page=",
            "from=2026-12",
            "to=yesterday",
            "from=2026-12-01T00:00:00+01:00",
        ] {
            assert!(parse_query(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_query("per_page=1").unwrap().per_page, 1);
        assert_eq!(parse_query("per_page=50").unwrap().per_page, 50);
    }

    #[test]
    fn completion_gives_the_terminal_status_and_one_string_or_a_list() {
        let mut p = json!({"id": "pred_1", "status": "starting", "output": null, "created_at": "2026-12-06T00:00:00Z", "completed_at": null});
        complete(&mut p, &["https://cdn/a.png".to_owned()], 1_796_515_201);
        assert_eq!(p["status"], "succeeded");
        assert_eq!(p["output"], "https://cdn/a.png");
        assert_eq!(p["started_at"], "2026-12-06T00:00:00Z");
        assert_eq!(p["completed_at"], "2026-12-06T00:00:01Z");
        let mut f = json!({"id": "pred_2", "status": "starting", "output": null, "created_at": "2026-12-06T00:00:00Z", "completed_at": null});
        super::fail(&mut f, "NSFW", 1_796_515_201);
        assert_eq!(
            (
                f["status"].as_str(),
                f["error"].as_str(),
                f["completed_at"].as_str()
            ),
            (Some("failed"), Some("NSFW"), Some("2026-12-06T00:00:01Z"))
        );
        assert!(f["output"].is_null());
        assert!(p["metrics"]["predict_time"].is_number());
        complete(&mut p, &["a".to_owned(), "b".to_owned()], 1_796_515_201);
        assert_eq!(p["output"], json!(["a", "b"]));
    }

    /// Starts the stand-in with `delivery`, one 64-byte output per prediction.
    async fn provider(delivery: Delivery) -> Provider {
        let p = Provider::start().await.unwrap();
        p.with(|s| {
            s.predictions.complete_with = Some((1, 64));
            s.predictions.delivery = delivery;
        });
        p
    }

    /// Submits `n` predictions whose webhooks go to `/hook/{i}` on the stand-in itself
    /// (counted by its hits); their ids.
    async fn submit(p: &Provider, n: usize) -> Vec<String> {
        let http = reqwest::Client::new();
        let mut ids = Vec::new();
        for i in 1..=n {
            let v: Value = http
                .post(format!("{}/v1/predictions", p.url))
                .header("x-api-key", INITIAL_API_KEY)
                .header("content-type", "application/json")
                .body(json!({"model": "truefusion", "input": {"n": i}, "webhook": {"url": format!("{}/hook/{i}", p.url), "events": ["prediction.succeeded"]}}).to_string())
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .map(|b| serde_json::from_slice(&b).unwrap())
                .unwrap();
            ids.push(v["id"].as_str().unwrap().to_owned());
        }
        ids
    }

    async fn get(p: &Provider, path: &str) -> (u16, Value) {
        let r = reqwest::Client::new()
            .get(format!("{}{path}", p.url))
            .header("x-api-key", INITIAL_API_KEY)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = r.bytes().await.unwrap();
        (status, serde_json::from_slice(&body).unwrap_or_default())
    }

    /// Waits up to 5 s for `done`.
    async fn until(mut done: impl FnMut() -> bool) {
        for _ in 0..250 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("never");
    }

    #[tokio::test]
    async fn every_kth_webhook_is_dropped_and_each_prediction_is_found_completed() {
        let p = provider(Delivery {
            loss: Loss::EveryKth(2),
            delay: None,
        })
        .await;
        let ids = submit(&p, 4).await;
        let (code, first) = get(&p, "/v1/predictions/pred_1").await;
        assert_eq!((code, first["status"].as_str()), (200, Some("starting")));
        until(|| p.with(|s| s.predictions.sent.len() + s.predictions.dropped.len()) == 4).await;
        until(|| p.hits("/hook/1") + p.hits("/hook/3") == 2).await;
        assert_eq!((p.hits("/hook/2"), p.hits("/hook/4")), (0, 0), "dropped");
        let dropped = p.with(|s| s.predictions.dropped.clone());
        assert_eq!(dropped, ["pred_2", "pred_4"]);
        for id in &ids {
            let (code, v) = get(&p, &format!("/v1/predictions/{id}")).await;
            assert_eq!(code, 200);
            assert_eq!(v["id"], id.as_str());
            assert_eq!(v["status"], "succeeded", "{v}");
            assert_eq!(v["model"], json!({"name": "truefusion", "type": "image"}));
            assert!(v["input"]["n"].is_number());
            assert!(v["output"]
                .as_str()
                .unwrap()
                .contains(&format!("/files/{id}-0.png")));
            assert!(v["error"].is_null());
            for k in ["created_at", "started_at", "completed_at"] {
                assert!(v[k].is_string(), "{k}: {v}");
            }
            assert!(v["metrics"].is_object());
        }
        // The list finds them too, with their terminal status.
        let (code, page) = get(&p, "/v1/predictions?per_page=3").await;
        assert_eq!(code, 200);
        assert_eq!(ids_of(&page), ["pred_4", "pred_3", "pred_2"]);
        assert_eq!(
            page["pagination"],
            json!({"current_page": 1, "per_page": 3, "total": 4, "last_page": 2})
        );
        assert!(page["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["status"] == "succeeded"));
        // The day pred_1 was created (not today's date: the test may cross midnight).
        let created = first["created_at"].as_str().unwrap();
        let today = &created[..10];
        let (_, page) = get(
            &p,
            &format!("/v1/predictions?page=2&per_page=3&from={today}&to={today}"),
        )
        .await;
        assert_eq!(ids_of(&page), ["pred_1"]);
        let (_, page) = get(&p, "/v1/predictions?to=2020-01-01").await;
        assert_eq!(page["pagination"]["total"], 0);
    }

    fn ids_of(page: &Value) -> Vec<String> {
        ids(page).into_iter().map(str::to_owned).collect()
    }

    #[tokio::test]
    async fn unknown_ids_bad_queries_and_missing_keys_get_the_providers_errors() {
        let p = provider(Delivery::default()).await;
        let (code, v) = get(&p, "/v1/predictions/pred_404").await;
        assert_eq!(code, 404);
        assert_eq!(v["status"], false);
        assert_eq!(v["error"]["error_id"], "PREDICTION_NOT_FOUND");
        assert_eq!(v["error"]["http_status"], 404);
        for q in ["per_page=51", "per_page=0", "page=0", "from=12/01/2026"] {
            let (code, v) = get(&p, &format!("/v1/predictions?{q}")).await;
            assert_eq!(
                (code, v["error"]["error_id"].as_str()),
                (400, Some("INVALID_PARAMETER")),
                "{q}"
            );
        }
        let r = reqwest::get(format!("{}/v1/predictions/pred_1", p.url))
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);
        assert_eq!(p.hits("/v1/predictions/pred_404"), 1, "polls are counted");
    }

    #[tokio::test]
    async fn polling_only_sends_no_webhook_and_the_prediction_still_completes() {
        let p = provider(Delivery {
            loss: Loss::All,
            delay: None,
        })
        .await;
        submit(&p, 2).await;
        until(|| p.with(|s| s.predictions.dropped.len()) == 2).await;
        let (_, v) = get(&p, "/v1/predictions/pred_2").await;
        assert_eq!(v["status"], "succeeded");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(p.hits("/hook/1") + p.hits("/hook/2"), 0);
        assert!(p.with(|s| s.predictions.sent.is_empty()));
    }

    #[tokio::test]
    async fn a_delayed_webhook_leaves_that_long_after_completion() {
        let p = provider(Delivery {
            loss: Loss::None,
            delay: Some(Duration::from_millis(1500)),
        })
        .await;
        submit(&p, 1).await;
        let (_, v) = get(&p, "/v1/predictions/pred_1").await;
        assert_eq!(v["status"], "starting");
        until(|| p.with(|s| s.predictions.records[0]["status"] == "succeeded")).await;
        let completed = std::time::Instant::now();
        until(|| p.hits("/hook/1") == 1).await;
        assert!(
            completed.elapsed() >= Duration::from_millis(1300),
            "sent {:?} after completion",
            completed.elapsed()
        );
    }
}
