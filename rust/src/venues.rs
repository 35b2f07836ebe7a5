//! Venue wire formats the core reads directly, so that a live loop can hand it the raw
//! websocket text instead of building Python objects first.

pub mod binance;
