//! `goodseed trash PROJECT/RUN` and `goodseed restore PROJECT/RUN`: set or clear a run's
//! `trashed` mark, as 0.4.0's UI does. The file stays where it is.

use std::io::Write;

use anyhow::Context as _;

use crate::cli::RunArgs;
use crate::run_ref;
use crate::store::open_store;

/// Runs `goodseed trash` (`trashed` true) or `goodseed restore` (false).
pub(crate) fn run(args: RunArgs, trashed: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let run = run_ref::parse(&args.run)?;
    let opened = open_store(args.data.location()?)?;
    let (store, dir) = (&opened.store, &opened.dir);
    let meta = store
        .open_run(&run.project, &run.run_id)
        .and_then(|reader| reader.meta())
        .map_err(|e| run_ref::store_error(e, dir))?;
    let line = if meta.trashed() == trashed {
        if trashed {
            format!("{run} is already in the trash")
        } else {
            format!("{run} is not in the trash")
        }
    } else {
        store
            .set_trashed(&run.project, &run.run_id, trashed)
            .map_err(|e| run_ref::store_error(e, dir))
            .with_context(|| format!("{} {run}", if trashed { "trashing" } else { "restoring" }))?;
        format!("{} {run}", if trashed { "trashed" } else { "restored" })
    };
    writeln!(out, "{line}").context("writing to standard output")
}
