//! `ferry action`: the GitHub Action entry point (being written).

pub async fn run() -> anyhow::Result<()> {
    anyhow::bail!("ferry action is being written")
}
