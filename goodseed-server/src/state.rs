//! What every handler shares: the store, the response cache, the column cache and the
//! live-update hub.

use std::sync::Arc;

use goodseed_store::RunStore;

use crate::cache::ResponseCache;
use crate::columns::ColumnCache;
use crate::live::LiveHub;

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) store: Arc<dyn RunStore>,
    pub(crate) cache: Arc<ResponseCache>,
    /// Config and last-metric values for the listing's `config=` / `metric=` columns.
    pub(crate) columns: Arc<ColumnCache>,
    /// The last run listings answered ([`crate::cache::ListingCache`]).
    pub(crate) listings: Arc<crate::cache::ListingCache>,
    /// Metrics' summaries read from runs whose backend does not keep them.
    pub(crate) metrics: Arc<crate::runs::MetricsCache>,
    /// The last orders of listings, for their next pages.
    pub(crate) orders: Arc<crate::runs::OrderCache>,
    /// Closed runs' downsampled series read for groups' curves.
    pub(crate) series: Arc<crate::groups::SeriesCache>,
    /// The live streams (`GET /api/events`) and the thread that feeds them.
    pub(crate) live: LiveHub,
    /// The machine's readings, for `/api/system/*`.
    pub(crate) system: Arc<crate::system::SystemMonitor>,
    /// The open writers of runs remote trainers write through the cloud API.
    pub(crate) remote: Arc<crate::cloud::remote::RemoteRuns>,
    /// Requests of interactive control, when the server keeps them.
    pub(crate) requests: Option<Arc<dyn goodseed_store::requests::RequestStore>>,
}
