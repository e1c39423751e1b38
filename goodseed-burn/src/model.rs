//! Configs that describe a burn training: the model (type, parameter count, structure)
//! and any burn `Config` (a learner's, an optimizer's).

use burn::config::Config;
use burn::module::Module;
use goodseed_sdk::{ConfigValue, Run};

/// Logs what describes `model` as configs: `model/type` (its Rust type),
/// `model/num_params` (burn's count of its parameters, every element of every float
/// tensor) and `model/structure` (burn's printout of its modules).
///
/// ```no_run
/// # fn f<M: burn::module::Module + std::fmt::Display>(
/// #     run: &goodseed_sdk::Run,
/// #     model: &M,
/// # ) -> goodseed_sdk::Result<()> {
/// goodseed_burn::log_model(run, model)?;
/// # Ok(())
/// # }
/// ```
pub fn log_model<M: Module + std::fmt::Display>(run: &Run, model: &M) -> goodseed_sdk::Result<()> {
    let num_params = i64::try_from(model.num_params()).unwrap_or(i64::MAX);
    run.set_config("model/type", std::any::type_name::<M>())?;
    run.set_config("model/num_params", ConfigValue::from(num_params))?;
    run.set_config("model/structure", model.to_string())
}

/// Logs a burn [`Config`] (a `#[derive(Config)]` struct: the training config, an
/// optimizer's, a model's) as configs under `prefix`, nested fields `/`-joined:
/// `log_burn_config(&run, "config", &training_config)` gives `config/num_epochs`,
/// `config/optimizer/beta_1`, …
pub fn log_burn_config<C: Config>(run: &Run, prefix: &str, config: &C) -> goodseed_sdk::Result<()> {
    run.log_config_under(prefix, config)
}
