//! Order diffing, ids, batches and rate limits.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

fn ladder(bids: &[(f64, f64)], asks: &[(f64, f64)]) -> QuoteLadder {
    let quotes = |levels: &[(f64, f64)]| {
        levels
            .iter()
            .map(|&(price, size)| Quote { price, size })
            .collect()
    };
    QuoteLadder {
        bids: quotes(bids),
        asks: quotes(asks),
        ..QuoteLadder::default()
    }
}

fn live(id: &str, side: Side, price: f64, size: f64) -> LiveOrder {
    LiveOrder {
        client_order_id: id.to_owned(),
        side,
        price,
        size,
    }
}

/// Applies actions to the live set, as the venue would.
fn apply(live: &[LiveOrder], actions: &[OrderAction]) -> Vec<LiveOrder> {
    let mut book: HashMap<String, LiveOrder> = live
        .iter()
        .map(|o| (o.client_order_id.clone(), o.clone()))
        .collect();
    for action in actions {
        match action {
            OrderAction::Cancel {
                client_order_id, ..
            } => {
                assert!(
                    book.remove(client_order_id).is_some(),
                    "cancel of an order that is not live"
                );
            }
            OrderAction::Amend {
                client_order_id,
                price,
                size,
                ..
            } => {
                let order = book
                    .get_mut(client_order_id)
                    .expect("amend of a live order");
                order.price = *price;
                order.size = *size;
            }
            OrderAction::Place {
                client_order_id,
                side,
                price,
                size,
            } => {
                assert!(
                    book.insert(
                        client_order_id.clone(),
                        live_order(client_order_id, *side, *price, *size)
                    )
                    .is_none(),
                    "id reused"
                );
            }
        }
    }
    book.into_values().collect()
}

fn live_order(id: &str, side: Side, price: f64, size: f64) -> LiveOrder {
    live(id, side, price, size)
}

#[test]
fn ids_are_unique_valid_and_recognisable() {
    let mut ids = ClientOrderIds::new("mm-20261125-a1").unwrap();
    let made: Vec<String> = (0..100_000).map(|_| ids.next_id()).collect();
    let unique: std::collections::HashSet<&String> = made.iter().collect();
    assert_eq!(unique.len(), made.len());
    assert!(made.iter().all(|id| id.len() <= MAX_CLIENT_ORDER_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')));
    assert!(ids.is_ours(&made[5]));
    assert!(!ids.is_ours("web_abc"));
    for bad in ["", "has space", "x".repeat(23).as_str(), "dot.ted"] {
        assert!(ClientOrderIds::new(bad).is_err(), "{bad}");
    }
    let mut last = ClientOrderIds::new(&"p".repeat(22)).unwrap();
    last.next = u64::MAX;
    assert!(last.next_id().len() <= MAX_CLIENT_ORDER_ID_LEN);
}

#[test]
fn keeps_what_is_close_and_replaces_the_rest() {
    let mut ids = ClientOrderIds::new("t-").unwrap();
    let rules = DiffRules {
        requote_tolerance_bps: 2.0,
        size_tolerance: 0.1,
        supports_amend: false,
    };
    let want = ladder(&[(100.0, 1.0), (99.9, 1.0)], &[(100.2, 1.0)]);
    let orders = [
        live("a", Side::Buy, 100.01, 1.05), // 1 bp and 5 %: kept for 100.0
        live("b", Side::Buy, 99.0, 1.0),    // too far: cancelled
        live("c", Side::Sell, 100.2, 2.0),  // size off by 100 %: cancelled, replaced
    ];
    let actions = diff(&want, &orders, &rules, &mut ids);
    let cancels: Vec<&OrderAction> = actions.iter().filter(|a| a.is_cancel()).collect();
    assert_eq!(cancels.len(), 2);
    assert!(
        actions.iter().position(|a| !a.is_cancel()).unwrap() >= cancels.len(),
        "cancels first"
    );
    let places: Vec<(Side, f64)> = actions
        .iter()
        .filter_map(|a| match a {
            OrderAction::Place { side, price, .. } => Some((*side, *price)),
            _ => None,
        })
        .collect();
    assert_eq!(places, vec![(Side::Buy, 99.9), (Side::Sell, 100.2)]);
    // Nothing to do when the live orders are the ladder.
    let same = [
        live("x", Side::Buy, 100.0, 1.0),
        live("y", Side::Buy, 99.9, 1.0),
        live("z", Side::Sell, 100.2, 1.0),
    ];
    assert!(diff(&want, &same, &rules, &mut ids).is_empty());
}

#[test]
fn amends_where_supported_and_never_doubles_a_price() {
    let mut ids = ClientOrderIds::new("t-").unwrap();
    let rules = DiffRules {
        requote_tolerance_bps: 0.0,
        size_tolerance: 0.0,
        supports_amend: true,
    };
    let want = ladder(&[(100.0, 1.0)], &[]);
    let actions = diff(&want, &[live("a", Side::Buy, 99.0, 1.0)], &rules, &mut ids);
    assert!(
        matches!(&actions[..], [OrderAction::Amend { client_order_id, price, .. }] if client_order_id == "a" && *price == 100.0)
    );
    // Two live orders at one price: one is cancelled even if it is wanted.
    let actions = diff(
        &want,
        &[
            live("a", Side::Buy, 100.0, 1.0),
            live("b", Side::Buy, 100.0, 1.0),
        ],
        &rules,
        &mut ids,
    );
    assert_eq!(actions.len(), 1);
    assert!(actions[0].is_cancel());
}

#[test]
fn two_orders_at_one_price_never_both_survive() {
    // Both live bids sit at 99.95, within 10 bps of both wanted levels (100.0 and 99.9): without
    // the duplicate check each would be kept for one level and two orders would stay at 99.95.
    let mut ids = ClientOrderIds::new("t-").unwrap();
    let rules = DiffRules {
        requote_tolerance_bps: 10.0,
        size_tolerance: 0.5,
        supports_amend: false,
    };
    let want = ladder(&[(100.0, 1.0), (99.9, 1.0)], &[]);
    let orders = [
        live("a", Side::Buy, 99.95, 1.0),
        live("b", Side::Buy, 99.95, 1.0),
    ];
    let after = apply(&orders, &diff(&want, &orders, &rules, &mut ids));
    let at_9995 = after
        .iter()
        .filter(|o| (o.price - 99.95).abs() < 1e-9)
        .count();
    assert_eq!(at_9995, 1, "{after:?}");
    assert_eq!(after.len(), 2);
}

#[test]
fn batches_are_venue_sized_and_cancels_first() {
    let mut ids = ClientOrderIds::new("t-").unwrap();
    let mut actions: Vec<OrderAction> = (0..12)
        .map(|i| OrderAction::Place {
            client_order_id: ids.next_id(),
            side: Side::Buy,
            price: f64::from(i) + 1.0,
            size: 1.0,
        })
        .collect();
    actions.extend((0..7).map(|i| OrderAction::Cancel {
        client_order_id: format!("c{i}"),
        side: Side::Sell,
        price: 1.0,
    }));
    let split = batches(&actions, 5);
    let sizes: Vec<usize> = split.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![5, 2, 5, 5, 2]);
    assert!(split[0].iter().chain(&split[1]).all(OrderAction::is_cancel));
    assert_eq!(batches(&actions, 10).len(), 1 + 2);
}

#[test]
fn rate_limiter_paces_and_keeps_room_for_cancels() {
    let second = 1_000_000_000;
    let mut limiter = RateLimiter::new(2.0, 2400.0, 300.0, 0.5).unwrap();
    assert!(limiter.try_send(0, Traffic::Orders, 5, 5.0));
    // The second call of this second would dip into the cancel reserve (half of 2 calls).
    assert!(!limiter.try_send(0, Traffic::Orders, 5, 5.0));
    assert!(limiter.try_send(0, Traffic::Cancels, 5, 1.0));
    assert!(
        !limiter.try_send(0, Traffic::Cancels, 5, 1.0),
        "the bucket is empty"
    );
    assert!(
        limiter.try_send(second, Traffic::Orders, 5, 5.0),
        "refilled after a second"
    );
    // The venue says 2390 of 2400 weight is used: orders wait, cancels may still use what is left.
    limiter.observe_usage(2 * second, Some(2390.0), None);
    assert!(!limiter.try_send(2 * second, Traffic::Orders, 1, 5.0));
    assert!(limiter.try_send(2 * second, Traffic::Cancels, 1, 5.0));
    limiter.block_for(3 * second, 10 * second);
    assert!(
        !limiter.try_send(5 * second, Traffic::Cancels, 1, 1.0),
        "blocked after a 429"
    );
    assert!(limiter.try_send(14 * second, Traffic::Cancels, 1, 1.0));
    assert!(RateLimiter::new(0.0, 1.0, 1.0, 0.1).is_err());
}

#[test]
fn the_per_minute_order_count_is_paced_as_the_venue_counts_it() {
    let second = 1_000_000_000;
    let limiter = RateLimiter::new(100.0, 1e9, 1e9, 0.25).unwrap();
    let mut limiter = limiter.with_orders_per_minute(40.0).unwrap();
    // Websocket API places count one each: 30 of 40 fit (a quarter is kept for cancels).
    let sent = (0..40)
        .filter(|_| limiter.try_send(0, Traffic::Orders, 1, 1.0))
        .count();
    assert_eq!(sent, 30);
    assert!(limiter.try_send(0, Traffic::Cancels, 5, 1.0));
    // A batch of 5 that the venue counts once per minute still fits: it takes 1, not 5.
    let mut batches = RateLimiter::new(100.0, 1e9, 1e9, 0.25)
        .unwrap()
        .with_orders_per_minute(40.0)
        .unwrap();
    let sent = (0..40)
        .filter(|_| batches.try_send_counted(0, Traffic::Orders, 5, 1, 1.0))
        .count();
    assert_eq!(sent, 30);
    // Refills at 40 a minute; the venue's count takes tokens back.
    assert!(limiter.try_send(2 * second, Traffic::Orders, 1, 1.0));
    limiter.observe_order_count_per_minute(3 * second, 40.0);
    assert!(!limiter.try_send(3 * second, Traffic::Orders, 1, 1.0));
    let (_, _, orders) = limiter.headroom(3 * second);
    assert!(
        orders < 0.01,
        "the tighter order count is the headroom: {orders}"
    );
    assert!(limiter.clone().with_orders_per_minute(0.0).is_err());
}

prop_compose! {
    fn side_levels(best: f64, direction: f64)(steps in prop::collection::btree_set(0_i64..30, 0..8), size in 1_u32..5) -> Vec<(f64, f64)> {
        steps.into_iter().map(|step| (((best + direction * step as f64 * 0.1) * 10.0).round() / 10.0, f64::from(size))).collect()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Whatever the live orders, after the diff's actions: exactly the desired prices rest (or
    /// orders within tolerance of them), and never two at one price and side.
    #[test]
    fn the_result_is_the_ladder_without_duplicates(
        bids in side_levels(100.0, -1.0),
        asks in side_levels(100.5, 1.0),
        live_steps in prop::collection::vec((any::<bool>(), 0_i64..40, 1_u32..5), 0..12),
        tolerance in 0.0_f64..20.0,
        amend in any::<bool>(),
    ) {
        let want = ladder(&bids, &asks);
        let orders: Vec<LiveOrder> = live_steps.iter().enumerate().map(|(i, (is_bid, step, size))| {
            let price = if *is_bid { 100.0 - *step as f64 * 0.1 } else { 100.5 + *step as f64 * 0.1 };
            live(&format!("l{i}"), if *is_bid { Side::Buy } else { Side::Sell }, (price * 10.0).round() / 10.0, f64::from(*size))
        }).collect();
        let rules = DiffRules { requote_tolerance_bps: tolerance, size_tolerance: 0.5, supports_amend: amend };
        let mut ids = ClientOrderIds::new("p-").unwrap();
        let actions = diff(&want, &orders, &rules, &mut ids);
        let after = apply(&orders, &actions);
        for side in [Side::Buy, Side::Sell] {
            let mut prices: Vec<i64> = after.iter().filter(|o| o.side == side).map(|o| (o.price * 10.0).round() as i64).collect();
            let count = prices.len();
            prices.sort_unstable();
            prices.dedup();
            prop_assert_eq!(prices.len(), count, "two orders at one price");
            let wanted = if side == Side::Buy { &want.bids } else { &want.asks };
            prop_assert_eq!(count, wanted.len(), "one resting order per desired level");
            for quote in wanted {
                prop_assert!(after.iter().any(|o| o.side == side && close_enough(o.price, o.size, quote, &rules)));
            }
        }
        // Running the diff again changes nothing.
        prop_assert!(diff(&want, &after, &rules, &mut ids).is_empty());
    }
}

#[test]
fn a_reused_scratch_diffs_like_a_fresh_one() {
    // A run of ticks with the ladder moving and the live set following it: one scratch reused
    // across all of them gives the same actions as a fresh diff each time.
    let rules = DiffRules {
        requote_tolerance_bps: 1.0,
        size_tolerance: 0.25,
        supports_amend: true,
    };
    let mut ids_fresh = ClientOrderIds::new("t-").unwrap();
    let mut ids_reused = ClientOrderIds::new("t-").unwrap();
    let mut scratch = DiffScratch::default();
    let mut orders = vec![
        live("a", Side::Buy, 99.0, 1.0),
        live("b", Side::Buy, 99.0, 1.0),
        live("c", Side::Sell, 101.0, 2.0),
    ];
    for tick in 0..50 {
        let shift = f64::from(tick % 7) * 0.5;
        let desired = ladder(
            &[(99.0 - shift, 1.0), (98.0 - shift, 2.0)],
            &[(101.0 + shift, 1.0), (102.0 + shift, 2.0), (103.0, 1.5)],
        );
        let fresh = diff(&desired, &orders, &rules, &mut ids_fresh);
        let reused = diff_with(&desired, &orders, &rules, &mut ids_reused, &mut scratch);
        assert_eq!(fresh, reused, "tick {tick}");
        orders = apply(&orders, &reused);
    }
}

/// The diff as it was before its working lists became flat per-side copies (commit afe0140),
/// kept to check that the faster one gives the same actions.
fn close_enough_reference(live: &LiveOrder, want: &Quote, rules: &DiffRules) -> bool {
    let price_bps = (live.price - want.price).abs() / want.price * 1e4;
    let size_fraction = (live.size - want.size).abs() / want.size;
    price_bps <= rules.requote_tolerance_bps + 1e-9 && size_fraction <= rules.size_tolerance + 1e-12
}

#[allow(clippy::too_many_lines)]
fn diff_reference(
    desired: &QuoteLadder,
    live: &[LiveOrder],
    rules: &DiffRules,
    ids: &mut ClientOrderIds,
) -> Vec<OrderAction> {
    let mut cancels = Vec::new();
    let mut amends = Vec::new();
    let mut places = Vec::new();
    let (mut order_indices, mut kept, mut on_wanted_price, mut satisfied, mut resting, mut spare) = (
        Vec::<usize>::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::<usize>::new(),
    );
    for (side, wanted) in [(Side::Buy, &desired.bids), (Side::Sell, &desired.asks)] {
        order_indices.clear();
        for (index, order) in live
            .iter()
            .enumerate()
            .filter(|(_, order)| order.side == side)
        {
            // A second order at a price we already hold is always cancelled.
            if order_indices
                .iter()
                .any(|&held| same_price(live[held].price, order.price))
            {
                cancels.push(OrderAction::Cancel {
                    client_order_id: order.client_order_id.clone(),
                    side,
                    price: order.price,
                });
            } else {
                order_indices.push(index);
            }
        }
        // By price, so that the matching below (ties between equally near orders, the choice of
        // a spare to amend) does not depend on the order the live orders came in: the same
        // orders in any order give the same actions, and diffing the result again gives none.
        order_indices.sort_by(|&a, &b| live[a].price.total_cmp(&live[b].price));
        let orders = |o: usize| &live[order_indices[o]];
        let count = order_indices.len();
        kept.clear();
        kept.resize(count, false);
        on_wanted_price.clear();
        on_wanted_price.extend((0..count).map(|o| {
            wanted
                .iter()
                .any(|want| same_price(want.price, orders(o).price))
        }));
        satisfied.clear();
        satisfied.resize(wanted.len(), false);
        // Exact prices first: at most one order per price is left, so the first match is it.
        for (w, want) in wanted.iter().enumerate() {
            if let Some(o) = (0..count).find(|&o| {
                !kept[o]
                    && same_price(orders(o).price, want.price)
                    && close_enough_reference(orders(o), want, rules)
            }) {
                kept[o] = true;
                satisfied[w] = true;
            }
        }
        // Then the nearest within tolerance. An order resting on another wanted price serves
        // that level or none: it must not block it by serving a neighbour.
        if satisfied.iter().any(|done| !done) {
            for (w, want) in wanted.iter().enumerate() {
                if satisfied[w] {
                    continue;
                }
                let best = (0..count)
                    .filter(|&o| {
                        !kept[o]
                            && !on_wanted_price[o]
                            && close_enough_reference(orders(o), want, rules)
                    })
                    .min_by(|&a, &b| {
                        (orders(a).price - want.price)
                            .abs()
                            .total_cmp(&(orders(b).price - want.price).abs())
                    });
                if let Some(o) = best {
                    kept[o] = true;
                    satisfied[w] = true;
                }
            }
        }
        resting.clear();
        resting.extend((0..count).filter(|&o| kept[o]).map(|o| orders(o).price));
        spare.clear();
        spare.extend((0..count).filter(|&o| !kept[o]));
        for (w, want) in wanted.iter().enumerate() {
            if satisfied[w] || resting.iter().any(|price| same_price(*price, want.price)) {
                continue;
            }
            // Amend a spare order (one that is not already at this price) rather than cancel + place.
            if rules.supports_amend {
                let same = spare
                    .iter()
                    .position(|&o| same_price(orders(o).price, want.price));
                // Prefer a spare at this price (a size change), then one not on another wanted
                // price (that level may still want it), then any.
                let elsewhere = || spare.iter().position(|&o| !on_wanted_price[o]);
                if let Some(position) = same
                    .or_else(elsewhere)
                    .or_else(|| (!spare.is_empty()).then_some(0))
                {
                    let order = orders(spare.remove(position));
                    amends.push(OrderAction::Amend {
                        client_order_id: order.client_order_id.clone(),
                        side,
                        price: want.price,
                        size: want.size,
                    });
                    resting.push(want.price);
                    continue;
                }
            }
            places.push(OrderAction::Place {
                client_order_id: ids.next_id(),
                side,
                price: want.price,
                size: want.size,
            });
            resting.push(want.price);
        }
        for &o in &spare {
            cancels.push(OrderAction::Cancel {
                client_order_id: orders(o).client_order_id.clone(),
                side,
                price: orders(o).price,
            });
        }
    }
    cancels.extend(amends);
    cancels.extend(places);
    cancels
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// The diff gives exactly the actions of the reference: any live orders (duplicates, any
    /// order, near and far), either venue kind, tolerances that keep some and not others, and
    /// ladders whose levels may be unsorted or sit on one price.
    #[test]
    fn the_diff_gives_the_reference_actions(
        bids in prop::collection::vec((0_i64..30, 1_u32..6), 0..7),
        asks in prop::collection::vec((0_i64..30, 1_u32..6), 0..7),
        live_steps in prop::collection::vec((any::<bool>(), 0_i64..40, 1_u32..6), 0..14),
        tolerance in prop_oneof![Just(0.0), Just(1.0), 0.0_f64..40.0],
        size_tolerance in prop_oneof![Just(0.25), 0.0_f64..1.0],
        amend in any::<bool>(),
    ) {
        let price = |base: f64, direction: f64, step: i64| ((base + direction * step as f64 * 0.1) * 10.0).round() / 10.0;
        let bids: Vec<(f64, f64)> = bids.iter().map(|(step, size)| (price(100.0, -1.0, *step), f64::from(*size))).collect();
        let asks: Vec<(f64, f64)> = asks.iter().map(|(step, size)| (price(100.5, 1.0, *step), f64::from(*size))).collect();
        let want = ladder(&bids, &asks);
        let orders: Vec<LiveOrder> = live_steps.iter().enumerate().map(|(i, (is_bid, step, size))| {
            let (side, price) = if *is_bid { (Side::Buy, price(100.0, -1.0, *step)) } else { (Side::Sell, price(100.5, 1.0, *step)) };
            live(&format!("l{i}"), side, price, f64::from(*size))
        }).collect();
        let rules = DiffRules { requote_tolerance_bps: tolerance, size_tolerance, supports_amend: amend };
        let mut ids = ClientOrderIds::new("p-").unwrap();
        let mut reference_ids = ids.clone();
        let mut scratch = DiffScratch::default();
        // Twice with one scratch: a reused scratch changes nothing either.
        for _ in 0..2 {
            let expected = diff_reference(&want, &orders, &rules, &mut reference_ids);
            prop_assert_eq!(diff_with(&want, &orders, &rules, &mut ids, &mut scratch), expected);
        }
    }
}

/// How a live order is made from a wanted level in the steady-ladder test.
#[derive(Debug, Clone, Copy)]
enum Drift {
    /// Exactly at the level.
    Exact,
    /// At the level with the size scaled.
    Size(f64),
    /// Within `same_price`'s tolerance of the level but not equal to it.
    Nudged(f64),
    /// A tick away.
    Moved,
    /// Not there.
    Gone,
    /// There twice.
    Twice,
}

fn drift() -> impl Strategy<Value = Drift> {
    prop_oneof![
        6 => Just(Drift::Exact),
        1 => prop_oneof![Just(1.2), Just(2.0), 0.5_f64..1.5].prop_map(Drift::Size),
        1 => prop_oneof![Just(5e-10), Just(-5e-10), Just(1e-9), -2e-9_f64..2e-9].prop_map(Drift::Nudged),
        1 => Just(Drift::Moved),
        1 => Just(Drift::Gone),
        1 => Just(Drift::Twice),
    ]
}

/// A side's levels from the best outward, a tick or more apart, sometimes with two levels
/// closer than `same_price`'s tolerance.
fn steady_side(
    best: f64,
    direction: f64,
    steps: &[i64],
    squeeze: Option<usize>,
) -> Vec<(f64, f64)> {
    let mut levels: Vec<(f64, f64)> = steps
        .iter()
        .map(|step| {
            (
                ((best + direction * *step as f64 * 0.1) * 10.0).round() / 10.0,
                1.0 + *step as f64 % 3.0,
            )
        })
        .collect();
    if let Some(at) = squeeze {
        if at + 1 < levels.len() {
            levels[at + 1].0 = levels[at].0 * (1.0 + direction * 3e-10);
        }
    }
    levels
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Live orders that mostly are the wanted ladder already (as on most ticks), with some
    /// levels drifted, gone, doubled, nudged within the price tolerance, plus strays, in any
    /// order: the diff gives exactly the reference's actions — whether the one-pass check for
    /// an unchanged side or the full matching decides.
    #[test]
    fn the_diff_of_a_nearly_steady_ladder_gives_the_reference_actions(
        bid_steps in prop::collection::btree_set(0_i64..30, 0..7),
        ask_steps in prop::collection::btree_set(0_i64..30, 0..7),
        squeeze in prop::option::weighted(0.1, 0_usize..6),
        drifts in prop::collection::vec(drift(), 14),
        strays in prop::collection::vec((any::<bool>(), 0_i64..40, 1_u32..4), 0..2),
        rotation in 0_usize..14,
        tolerance in prop_oneof![Just(0.0), Just(1.0), 0.0_f64..40.0],
        size_tolerance in prop_oneof![Just(0.25), Just(0.0), 0.0_f64..1.0],
        amend in any::<bool>(),
    ) {
        let bid_steps: Vec<i64> = bid_steps.into_iter().collect();
        let ask_steps: Vec<i64> = ask_steps.into_iter().collect();
        let want = ladder(&steady_side(100.0, -1.0, &bid_steps, squeeze), &steady_side(100.5, 1.0, &ask_steps, squeeze));
        let mut orders = Vec::new();
        let levels = want.bids.iter().map(|q| (Side::Buy, q)).chain(want.asks.iter().map(|q| (Side::Sell, q)));
        for ((side, quote), drift) in levels.zip(drifts) {
            let id = format!("o{}", orders.len());
            let outward = if side == Side::Buy { -0.1 } else { 0.1 };
            match drift {
                Drift::Exact => orders.push(live(&id, side, quote.price, quote.size)),
                Drift::Size(scale) => orders.push(live(&id, side, quote.price, quote.size * scale)),
                Drift::Nudged(by) => orders.push(live(&id, side, quote.price * (1.0 + by), quote.size)),
                Drift::Moved => orders.push(live(&id, side, quote.price + outward, quote.size)),
                Drift::Gone => {}
                Drift::Twice => {
                    orders.push(live(&id, side, quote.price, quote.size));
                    orders.push(live(&format!("{id}b"), side, quote.price, quote.size));
                }
            }
        }
        for (i, (is_bid, step, size)) in strays.iter().enumerate() {
            let (side, price) = if *is_bid { (Side::Buy, 100.0 - *step as f64 * 0.1) } else { (Side::Sell, 100.5 + *step as f64 * 0.1) };
            orders.push(live(&format!("s{i}"), side, (price * 10.0).round() / 10.0, f64::from(*size)));
        }
        if !orders.is_empty() {
            let by = rotation % orders.len();
            orders.rotate_left(by);
        }
        let rules = DiffRules { requote_tolerance_bps: tolerance, size_tolerance, supports_amend: amend };
        let mut ids = ClientOrderIds::new("p-").unwrap();
        let mut reference_ids = ids.clone();
        let mut scratch = DiffScratch::default();
        for _ in 0..2 {
            let expected = diff_reference(&want, &orders, &rules, &mut reference_ids);
            prop_assert_eq!(diff_with(&want, &orders, &rules, &mut ids, &mut scratch), expected);
        }
    }
}

#[test]
fn an_unchanged_ladder_sends_nothing_and_a_changed_one_does() {
    let rules = DiffRules::default();
    let mut ids = ClientOrderIds::new("t-").unwrap();
    let want = ladder(&[(100.0, 1.0), (99.9, 1.0)], &[(100.1, 1.0), (100.2, 1.0)]);
    let mut orders = vec![
        live("a", Side::Sell, 100.2, 1.0),
        live("b", Side::Buy, 99.9, 1.0),
        live("c", Side::Sell, 100.1, 1.0),
        live("d", Side::Buy, 100.0, 1.1),
    ];
    assert!(diff(&want, &orders, &rules, &mut ids).is_empty());
    // A size past the tolerance: replaced.
    orders[3].size = 2.0;
    let actions = diff(&want, &orders, &rules, &mut ids);
    assert_eq!(actions.len(), 2);
    assert!(
        matches!(&actions[0], OrderAction::Cancel { client_order_id, .. } if client_order_id == "d")
    );
    assert!(
        matches!(&actions[1], OrderAction::Place { side: Side::Buy, price, .. } if *price == 100.0)
    );
}

/// One side's orders as [`diff_with`] sees them: flat and sorted by price.
fn side_orders(live: &[LiveOrder], side: Side) -> Vec<SideOrder> {
    let mut orders = Vec::new();
    read_side(live, side, &mut orders);
    orders
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Live orders each near its level, within the requote tolerance or just past it (as after
    /// most ticks, when the ladder moved by less than the tolerance) or whole half ticks away
    /// (as far as a neighbour), sometimes resized, doubled, gone or joined by a stray, in any
    /// order, with the levels sometimes out of order, with tolerances from far below the
    /// levels' spacing (10 bps) to several spacings: the diff gives exactly the reference's
    /// actions, and whenever the one-pass check says each order serves its own level, the
    /// reference sends nothing on that side.
    #[test]
    fn orders_within_tolerance_of_their_levels_give_the_reference_actions(
        bid_steps in prop::collection::btree_set(0_i64..30, 0..7),
        ask_steps in prop::collection::btree_set(0_i64..30, 0..7),
        shares in prop::collection::vec(prop_oneof![Just(1.0), Just(-1.0), -1.2_f64..1.2], 14),
        half_ticks in prop::collection::vec(prop::option::weighted(0.3, -2_i32..=2), 14),
        swap in prop::option::weighted(0.1, 0_usize..6),
        scales in prop::collection::vec(prop_oneof![4 => Just(1.0), 1 => 0.6_f64..1.4], 14),
        gone in prop::option::weighted(0.1, 0_usize..14),
        twice in prop::option::weighted(0.1, 0_usize..14),
        stray in prop::option::weighted(0.1, (any::<bool>(), 0_i64..40, 1_u32..4)),
        rotation in 0_usize..15,
        tolerance in prop_oneof![Just(1.0), Just(1e-4), Just(5.0), 0.0_f64..40.0],
        size_tolerance in prop_oneof![Just(0.25), 0.0_f64..1.0],
        amend in any::<bool>(),
    ) {
        let bid_steps: Vec<i64> = bid_steps.into_iter().collect();
        let ask_steps: Vec<i64> = ask_steps.into_iter().collect();
        let mut want = ladder(&steady_side(100.0, -1.0, &bid_steps, None), &steady_side(100.5, 1.0, &ask_steps, None));
        let mut orders = Vec::new();
        let levels = want.bids.iter().map(|q| (Side::Buy, q)).chain(want.asks.iter().map(|q| (Side::Sell, q)));
        for (index, (side, quote)) in levels.enumerate() {
            if gone == Some(index) {
                continue;
            }
            // Half ticks put orders as far from a level as its neighbour's order (ties).
            let price = match half_ticks[index] {
                Some(halves) => ((quote.price + f64::from(halves) * 0.05) * 100.0).round() / 100.0,
                None => quote.price * (1.0 + shares[index] * tolerance * 1e-4),
            };
            orders.push(live(&format!("o{index}"), side, price, quote.size * scales[index]));
            if twice == Some(index) {
                orders.push(live(&format!("o{index}b"), side, price, quote.size));
            }
        }
        if let Some((is_bid, step, size)) = stray {
            let (side, price) = if is_bid { (Side::Buy, 100.0 - step as f64 * 0.1) } else { (Side::Sell, 100.5 + step as f64 * 0.1) };
            orders.push(live("stray", side, (price * 10.0).round() / 10.0, f64::from(size)));
        }
        // Levels out of order: the first two swapped.
        if let Some(at) = swap {
            let side = if at % 2 == 0 { &mut want.bids } else { &mut want.asks };
            if side.len() >= 2 {
                side.swap(0, 1);
            }
        }
        let by = rotation % (orders.len() + 1);
        orders.rotate_left(by);
        let rules = DiffRules { requote_tolerance_bps: tolerance, size_tolerance, supports_amend: amend };
        let mut ids = ClientOrderIds::new("p-").unwrap();
        let mut reference_ids = ids.clone();
        let mut scratch = DiffScratch::default();
        let mut expected = Vec::new();
        for _ in 0..2 {
            expected = diff_reference(&want, &orders, &rules, &mut reference_ids);
            prop_assert_eq!(diff_with(&want, &orders, &rules, &mut ids, &mut scratch), expected.clone());
        }
        for (side, wanted) in [(Side::Buy, &want.bids), (Side::Sell, &want.asks)] {
            if each_order_serves_its_level(&side_orders(&orders, side), wanted, side, &rules) {
                prop_assert!(expected.iter().all(|action| action.side() != side), "{:?} sends {:?}", side, expected);
            }
        }
    }
}

#[test]
fn orders_within_tolerance_of_their_own_levels_are_all_kept_in_one_pass() {
    // The usual tick: the ladder moved by less than the 1 bps tolerance, so every order (in the
    // order they were placed: bids falling, asks rising) serves its level as it is.
    let rules = DiffRules::default();
    let want = ladder(
        &[(100.0, 1.0), (99.9, 1.0), (99.5, 2.0)],
        &[(100.1, 1.0), (100.2, 1.0), (100.6, 2.0)],
    );
    let orders = vec![
        live("a", Side::Buy, 100.005, 1.0),
        live("b", Side::Buy, 99.895, 1.1),
        live("c", Side::Buy, 99.5, 2.0),
        live("d", Side::Sell, 100.09, 1.0),
        live("e", Side::Sell, 100.2, 0.9),
        live("f", Side::Sell, 100.605, 2.0),
    ];
    for side in [Side::Buy, Side::Sell] {
        let wanted = if side == Side::Buy {
            &want.bids
        } else {
            &want.asks
        };
        assert!(each_order_serves_its_level(
            &side_orders(&orders, side),
            wanted,
            side,
            &rules
        ));
    }
    let mut ids = ClientOrderIds::new("t-").unwrap();
    assert!(diff(&want, &orders, &rules, &mut ids).is_empty());
    // Within a wide tolerance, orders nearer their neighbours' levels than their own too: the
    // first level the matching takes would take its neighbour's order, so it is left to the
    // full matching (which keeps both here, the other way round).
    let wide = DiffRules {
        requote_tolerance_bps: 20.0,
        ..rules
    };
    let want = ladder(&[], &[(100.1, 1.0), (100.2, 1.0)]);
    let orders = vec![
        live("a", Side::Sell, 100.0, 1.0),
        live("b", Side::Sell, 100.12, 1.0),
    ];
    assert!(!each_order_serves_its_level(
        &side_orders(&orders, Side::Sell),
        &want.asks,
        Side::Sell,
        &wide
    ));
    assert!(diff(&want, &orders, &wide, &mut ids).is_empty());
}

#[test]
fn two_orders_one_price_apart_by_less_than_a_hair_are_not_taken_as_serving_two_levels() {
    // Two orders within `same_price`'s tolerance of each other (one price for the diff, so the
    // second is cancelled), each within the requote tolerance of a different level: the
    // lower one just inside the first level's tolerance, the higher one just past it and just
    // inside the second level's.
    let rules = DiffRules::default();
    let close = |price: f64, level: f64| {
        price_close_enough(
            price,
            &Quote {
                price: level,
                size: 1.0,
            },
            &rules,
        )
    };
    // The highest of positive prices from `low` (where `holds`) to `high` (where not) at which
    // `holds` still does, halving the bit patterns between them (they rise with the price).
    let last_holding = |mut low: f64, mut high: f64, holds: &dyn Fn(f64) -> bool| {
        while high.to_bits() - low.to_bits() > 1 {
            let middle = f64::from_bits(low.to_bits() + (high.to_bits() - low.to_bits()) / 2);
            if holds(middle) {
                low = middle;
            } else {
                high = middle;
            }
        }
        low
    };
    let first = 100.0;
    let lower = last_holding(first, first * 1.0002, &|price| close(price, first));
    let higher = lower.next_up();
    assert!(!close(higher, first) && same_price(lower, higher));
    let second = last_holding(higher, higher * 1.0003, &|level| close(higher, level));
    assert!(
        !close(lower, second),
        "the two levels' tolerances meet between the orders"
    );
    let want = ladder(&[], &[(first, 1.0), (second, 1.0)]);
    let orders = vec![
        live("a", Side::Sell, lower, 1.0),
        live("b", Side::Sell, higher, 1.0),
    ];
    assert!(!each_order_serves_its_level(
        &side_orders(&orders, Side::Sell),
        &want.asks,
        Side::Sell,
        &rules
    ));
    let mut ids = ClientOrderIds::new("t-").unwrap();
    let mut reference_ids = ids.clone();
    let actions = diff(&want, &orders, &rules, &mut ids);
    assert!(
        matches!(&actions[0], OrderAction::Cancel { client_order_id, .. } if client_order_id == "b")
    );
    assert_eq!(
        actions,
        diff_reference(&want, &orders, &rules, &mut reference_ids)
    );
}

#[test]
fn a_neighbouring_order_as_near_as_a_levels_own_is_left_to_the_full_matching() {
    // Bids: the best level (taken first) is as near the order below it as its own order above
    // it; ties go to the lower price, so the best level takes its neighbour's order and the
    // next level, too far from the one left, needs a new order.
    let rules = DiffRules {
        requote_tolerance_bps: 10.0,
        ..DiffRules::default()
    };
    let want = ladder(&[(100.0, 1.0), (99.875, 1.0)], &[]);
    let orders = vec![
        live("a", Side::Buy, 100.0625, 1.0),
        live("b", Side::Buy, 99.9375, 1.0),
    ];
    assert!(!each_order_serves_its_level(
        &side_orders(&orders, Side::Buy),
        &want.bids,
        Side::Buy,
        &rules
    ));
    let mut ids = ClientOrderIds::new("t-").unwrap();
    let mut reference_ids = ids.clone();
    let actions = diff(&want, &orders, &rules, &mut ids);
    assert!(!actions.is_empty());
    assert_eq!(
        actions,
        diff_reference(&want, &orders, &rules, &mut reference_ids)
    );
}
