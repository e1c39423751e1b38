//! `goodseed token create | list | revoke`: the keys remote trainers log to this
//! server's cloud API with (`GOODSEED_API_KEY`), each reaching one workspace or one
//! project of it, read-only or not. A key is shown once, when it is made; the data
//! directory keeps only its hash.

use std::io::Write;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use goodseed_store::tokens::TokenScope;

use crate::UsageError;
use crate::cli::DataDir;
use crate::display::elide;
use crate::store::open_tokens;

/// Arguments of `goodseed token`.
#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    #[command(subcommand)]
    pub(crate) action: TokenAction,
}

/// What `goodseed token` does.
#[derive(Debug, Subcommand)]
pub(crate) enum TokenAction {
    /// Make a key and print it (only this once) on standard output.
    #[command(long_about = "Make a key and print it, only this once, on standard output \
            (what it is for goes to standard error), so that `KEY=$(goodseed token create \
            --workspace team)` keeps it. A trainer logs into the server with it as \
            GOODSEED_API_KEY (goodseed 0.4.0 too), GOODSEED_API_URL pointing at the server.\n\n\
            The key reaches the projects of one workspace (team/vision, team/nlp, … for \
            --workspace team), or one project (--project vision: team/vision only); with \
            --read-only it can read runs but not create or write them. Another workspace's \
            runs are out of its reach (403).")]
    Create(CreateArgs),
    /// List the keys that work (never their secret): id, scope, label, when made.
    List(ListArgs),
    /// Revoke a key by its id: it stops working at once, even on a running server.
    Revoke(RevokeArgs),
}

/// Arguments of `goodseed token create`.
#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// The workspace the key reaches (the first part of workspace/project)
    #[arg(long, value_name = "WORKSPACE")]
    pub(crate) workspace: String,

    /// Only this project of the workspace (its name within it)
    #[arg(long, value_name = "PROJECT")]
    pub(crate) project: Option<String>,

    /// The key can read runs but not create or write them
    #[arg(long)]
    pub(crate) read_only: bool,

    /// What the key is for, shown by `goodseed token list`
    #[arg(long, value_name = "TEXT")]
    pub(crate) label: Option<String>,

    #[command(flatten)]
    pub(crate) data: DataDir,
}

/// Arguments of `goodseed token list`.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    pub(crate) data: DataDir,
}

/// Arguments of `goodseed token revoke`.
#[derive(Debug, Args)]
pub(crate) struct RevokeArgs {
    /// The key's id, as `goodseed token list` shows it
    #[arg(value_name = "ID")]
    pub(crate) id: String,

    #[command(flatten)]
    pub(crate) data: DataDir,
}

/// Runs `goodseed token`.
pub(crate) fn run(args: TokenArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    match args.action {
        TokenAction::Create(a) => {
            let scope = TokenScope::new(&a.workspace, a.project.as_deref(), a.read_only)
                .map_err(UsageError::new)?;
            if let Some(label) = &a.label
                && label.chars().any(char::is_control)
            {
                return Err(UsageError::new(std::io::Error::other(
                    "--label may not hold control characters",
                ))
                .into());
            }
            let tokens = open_tokens(a.data.location()?)?;
            let made = tokens.create(&scope, a.label.as_deref()).context("making the key")?;
            let mut err = std::io::stderr();
            let _ = writeln!(
                err,
                "Key {} for {}: it is shown only now, keep it. A trainer logs with it as \
                 GOODSEED_API_KEY, with GOODSEED_API_URL=http://<this server>:<port>.",
                made.info.id, made.info.scope
            );
            writeln!(out, "{}", made.secret).context("writing to standard output")
        }
        TokenAction::List(a) => {
            let tokens = open_tokens(a.data.location()?)?;
            let list = tokens.list().context("reading the keys")?;
            if list.is_empty() {
                return writeln!(
                    out,
                    "No keys. Make one with `goodseed token create --workspace NAME`."
                )
                .context("writing to standard output");
            }
            for t in &list {
                let created = t.created_at.get(..19).unwrap_or(&t.created_at);
                write!(out, "{}  {}  created {created}", t.id, t.scope)?;
                if let Some(label) = &t.label {
                    write!(out, "  {}", elide(label, 60))?;
                }
                writeln!(out)?;
            }
            writeln!(out, "\n{} key(s)", list.len()).context("writing to standard output")
        }
        TokenAction::Revoke(a) => {
            let tokens = open_tokens(a.data.location()?)?;
            tokens.revoke(&a.id)?;
            writeln!(out, "revoked key {}", a.id).context("writing to standard output")
        }
    }
}
