"""The front door shows the committed results, not numbers from an earlier run."""

from pathlib import Path

from nnlab.report import headline_table, load_training_results

README = Path("README.md")


def test_readme_headline_table_matches_the_committed_metrics():
    assert headline_table(load_training_results()) in README.read_text()


def test_readme_shows_the_two_set_up_commands_first():
    text = README.read_text()
    assert text.index("make repro") < text.index("make test") < text.index("## Results")
