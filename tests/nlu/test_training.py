"""`mirai nlu train`'s pieces: deterministic models that survive the trip through their shipped file."""
from __future__ import annotations

from nlu.data import TRAIN_DIR, read_examples
from nlu.embedded import DANGER_MODEL, INTENT_MODEL, LANGID_MODEL
from nlu.linear import LinearModel, load_json_gz, save_json_gz
from nlu.text import intent_features
from nlu.training import language_corpus, train_intent_model


def test_a_small_model_trains_quickly_and_round_trips_through_its_file(tmp_path):
    examples = [e for e in read_examples(TRAIN_DIR / "en.yml")]
    model = train_intent_model(examples, epochs=4)
    again = train_intent_model(examples, epochs=4)
    assert model.to_json() == again.to_json()  # same data, same model
    save_json_gz(tmp_path / "m.json.gz", model.to_json())
    first = (tmp_path / "m.json.gz").read_bytes()
    save_json_gz(tmp_path / "m.json.gz", model.to_json())
    assert (tmp_path / "m.json.gz").read_bytes() == first  # a retrain without changes leaves git clean
    loaded = LinearModel.from_json(load_json_gz(tmp_path / "m.json.gz"))
    for text, intent in [("please stop sending messages", "stop"), ("thank you so much", "thanks")]:
        assert loaded.ranking(intent_features(text))[0][0] == intent


def test_averaged_models_are_one_model_of_the_mean_weights():
    a = LinearModel(["en", "es"], {"x": [1.0, -1.0], "y": [2.0, 0.0]}, [0.5, -0.5])
    b = LinearModel(["en", "es"], {"x": [3.0, 1.0]}, [1.5, 0.5])
    mean = LinearModel.mean([a, b])
    assert mean.labels == ["en", "es"]
    assert mean.weights == {"x": [2.0, 0.0], "y": [1.0, 0.0]}  # a feature one model lacks counts 0 there
    assert mean.bias == [1.0, 0.0]


def test_the_shipped_models_are_small_and_name_their_classes():
    for path in (INTENT_MODEL, DANGER_MODEL, LANGID_MODEL):
        assert path.stat().st_size < 3 * 1024 * 1024, path
    assert len(load_json_gz(INTENT_MODEL)["model"]["labels"]) == 10
    assert "ordinary" in load_json_gz(DANGER_MODEL)["model"]["labels"]
    assert len(load_json_gz(LANGID_MODEL)["labels"]) == 9


def test_the_language_corpus_has_sentences_in_every_language():
    langs = {lang for _, lang in language_corpus()}
    assert langs == {"ja", "en", "zh", "vi", "tl", "id", "my", "pt", "es"}


def test_the_intent_model_does_not_depend_on_the_process_hash_seed():
    """Feature dropout draws for each feature in turn: that order must not follow a set's (str hashes vary by
    process), or `mirai nlu train` would give another model in each run."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    script = ("import hashlib, json\nfrom nlu.data import TRAIN_DIR, read_examples\n"
              "from nlu.training import train_intent_model\n"
              "m = train_intent_model(read_examples(TRAIN_DIR / 'en.yml')[:150], epochs=2)\n"
              "print(hashlib.md5(json.dumps(m.to_json(), sort_keys=True).encode()).hexdigest())")
    digests = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(root)}
        digests.add(subprocess.run([sys.executable, "-c", script], env=env, cwd=root, capture_output=True,
                                   text=True, check=True).stdout.strip())
    assert len(digests) == 1
