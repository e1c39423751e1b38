//! The server's request path decoding, run routes and query parameters, through the
//! handlers' own functions (`goodseed_server::fuzzing`), with their properties checked
//! there.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|target: &str| {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    goodseed_server::fuzzing::route(path);
    goodseed_server::fuzzing::query(query);
});
