//! Binance USDⓈ-M `depthUpdate` events from their raw JSON text (bare or in the combined-stream
//! envelope `{"stream": ..., "data": {...}}`), applied to a book under the venue's rules.

use serde::Deserialize;

use crate::book::{ApplyOutcome, BinanceDiff, Level, OrderBook};
use crate::error::{CoreError, CoreResult};
use crate::price::size_of_text;

#[derive(Deserialize)]
struct DepthEvent<'a> {
    #[serde(rename = "E")]
    event_time_ms: Option<i64>,
    #[serde(rename = "U")]
    first_update_id: u64,
    #[serde(rename = "u")]
    last_update_id: u64,
    #[serde(rename = "pu")]
    prev_last_update_id: u64,
    #[serde(rename = "b", borrow)]
    bids: Vec<(&'a str, &'a str)>,
    #[serde(rename = "a", borrow)]
    asks: Vec<(&'a str, &'a str)>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    data: DepthEvent<'a>,
}

fn levels(
    book: &OrderBook,
    raw: &[(&str, &str)],
    name: &str,
    out: &mut Vec<Level>,
) -> CoreResult<()> {
    out.clear();
    for (index, (price, size)) in raw.iter().enumerate() {
        let field = || format!("{name}[{index}]");
        out.push((
            book.grid().ticks_of_text(price, &field)?,
            size_of_text(size, &field)?,
        ));
    }
    Ok(())
}

/// Parses a `depthUpdate` event (bare or enveloped) and applies it to `book` (which must use
/// Binance sequencing). `bids` and `asks` are scratch buffers, reused between calls. The whole
/// message is validated before anything is applied.
pub fn apply_depth_json(
    book: &mut OrderBook,
    text: &str,
    receive_time_ns: Option<i64>,
    bids: &mut Vec<Level>,
    asks: &mut Vec<Level>,
) -> CoreResult<ApplyOutcome> {
    // Combined streams start with the envelope; a bare event that fails is tried as one too.
    let enveloped = || serde_json::from_str::<Envelope<'_>>(text).map(|envelope| envelope.data);
    let event = if text.trim_start().starts_with("{\"stream\"") {
        enveloped()
    } else {
        serde_json::from_str::<DepthEvent<'_>>(text).or_else(|bare| enveloped().map_err(|_| bare))
    }
    .map_err(|error| CoreError::Malformed(format!("depthUpdate: {error}")))?;
    levels(book, &event.bids, "bids", bids)?;
    levels(book, &event.asks, "asks", asks)?;
    book.apply_binance_diff(&BinanceDiff {
        first_update_id: event.first_update_id,
        last_update_id: event.last_update_id,
        prev_last_update_id: event.prev_last_update_id,
        bids,
        asks,
        exchange_time_ns: event.event_time_ms.map(|ms| ms * 1_000_000),
        receive_time_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::Sequencing;
    use crate::price::PriceGrid;
    use crate::side::Side;

    #[test]
    fn applies_bare_and_enveloped_events_and_rejects_bad_ones_whole() {
        let mut book = OrderBook::new(
            "BTCUSDT",
            PriceGrid::from_text("0.1").unwrap(),
            Sequencing::Binance,
        );
        book.apply_snapshot(Some(100), &[(600_000, 1.0)], &[(600_010, 1.0)], None, None)
            .unwrap();
        let (mut bids, mut asks) = (Vec::new(), Vec::new());
        let bare = r#"{"e":"depthUpdate","E":1723161256299,"T":1,"s":"BTCUSDT","U":95,"u":105,"pu":94,"b":[["60000.10","2.5"]],"a":[["60001.00","0.000"]]}"#;
        assert_eq!(
            apply_depth_json(&mut book, bare, Some(7), &mut bids, &mut asks).unwrap(),
            ApplyOutcome::Applied
        );
        assert_eq!(book.best_bid(), Some((600_001, 2.5)));
        assert_eq!(book.level_count(Side::Sell), 0);
        assert_eq!(book.exchange_time_ns(), Some(1_723_161_256_299_000_000));
        let enveloped = r#"{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":2,"U":106,"u":110,"pu":105,"b":[],"a":[["60002.00","1.5"]]}}"#;
        assert_eq!(
            apply_depth_json(&mut book, enveloped, None, &mut bids, &mut asks).unwrap(),
            ApplyOutcome::Applied
        );
        assert_eq!(book.best_ask(), Some((600_020, 1.5)));
        // An off-tick price anywhere: nothing applied, and the sequence is not consumed.
        let bad = r#"{"e":"depthUpdate","E":3,"U":111,"u":112,"pu":110,"b":[["60000.20","1"]],"a":[["60002.05","1"]]}"#;
        assert!(matches!(
            apply_depth_json(&mut book, bad, None, &mut bids, &mut asks),
            Err(CoreError::OffTick { .. })
        ));
        assert_eq!(book.best_bid(), Some((600_001, 2.5)));
        assert_eq!(book.last_update_id(), Some(110));
        assert!(matches!(
            apply_depth_json(&mut book, "{not json", None, &mut bids, &mut asks),
            Err(CoreError::Malformed(_))
        ));
        let gap = r#"{"e":"depthUpdate","E":4,"U":120,"u":121,"pu":119,"b":[],"a":[]}"#;
        assert_eq!(
            apply_depth_json(&mut book, gap, None, &mut bids, &mut asks).unwrap(),
            ApplyOutcome::Gap
        );
    }
}
