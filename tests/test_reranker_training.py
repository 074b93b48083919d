"""Training Cairn's reranker: pairs mined from a real index, a short fine-tune whose loss falls,
checkpoints that resume, and a saved model that loads offline through `CrossEncoderReranker`
and ranks held-back relevant passages first.

The corpus is small and clearly separable (eight topics, three sections each), ingested by the
real pipeline; the model is the packaged MiniLM with a fresh head, trained for a few steps.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures_retrieval import retrieval_settings

from reranker_training.mining import (
    MinedData,
    MiningConfig,
    PairMiner,
    find_candidates,
    is_term,
    load_mined,
    normalise_query,
    read_passages,
    save_mined,
)
from reranker_training.training import RerankerTrainer, TrainingConfig, TrainingError, score_ranking

MAX_LENGTH = 64  # enough of each short section to learn from; keeps the steps fast

TOPICS = {
    "kitchen/sourdough.md": (
        "Sourdough baking",
        {
            "Feeding the starter": "Feed the sourdough starter with equal weights of flour and water every day. "
            "Discard half of the culture before each feeding so the yeast and lactic bacteria stay active and the jar does not overflow.",
            "Shaping the loaf": "After the bulk fermentation, tip the dough onto a floured bench and fold the edges towards the middle. "
            "Roll it into a tight ball so the surface tension holds the loaf upright in the proofing basket.",
            "Baking in a Dutch oven": "Preheat the cast iron pot at 250 degrees for forty minutes. Bake the bread with the lid on "
            "for twenty minutes to trap steam, then remove the lid so the crust turns dark and crisp.",
        },
    ),
    "it/home-network.md": (
        "Home networking",
        {
            "Choosing a router": "Pick a router that supports Wi-Fi 6 and receives regular firmware updates from its vendor. "
            "Mesh systems cover large houses better than one powerful router placed in a corner.",
            "Setting up a guest network": "Create a separate SSID for visitors with its own password. The guest network "
            "isolates their phones and laptops from your printers, file shares and smart home devices.",
            "Fixing slow Wi-Fi": "Move the access point away from microwaves and thick walls, and switch the channel when "
            "neighbouring networks crowd the 2.4 GHz band. Test the speed with a cable to rule out the provider.",
        },
    ),
    "garden/vegetables.md": (
        "Vegetable gardening",
        {
            "Preparing the soil": "Loosen the bed with a fork in early spring and mix in a thick layer of compost. "
            "Well drained soil rich in organic matter feeds the plants and holds moisture during dry weeks.",
            "Watering tomatoes": "Water tomato plants deeply at the base twice a week instead of sprinkling the leaves daily. "
            "Irregular watering causes split fruit and blossom end rot.",
            "Keeping slugs away": "Slugs eat lettuce seedlings overnight. Collect them at dusk, set beer traps between the rows "
            "and spread crushed eggshells or copper tape around young plants.",
        },
    ),
    "sport/bicycle.md": (
        "Bicycle maintenance",
        {
            "Fixing a flat tyre": "Lever the tyre off the rim, pull out the inner tube and find the puncture by pumping it up "
            "and listening for escaping air. Patch the hole or fit a new tube, then check the tyre for thorns.",
            "Adjusting the brakes": "Squeeze the brake lever: the pads should grip the rim before the lever touches the handlebar. "
            "Turn the barrel adjuster to tighten the cable and align the pads so they hit the rim squarely.",
            "Lubricating the chain": "Wipe the chain with a rag, apply one drop of chain oil to every roller while turning the "
            "pedals backwards, and wipe off the excess so dirt does not stick to it.",
        },
    ),
    "hobby/astronomy.md": (
        "Amateur astronomy",
        {
            "Choosing a telescope": "A reflector with a wide aperture gathers more light than a small refractor for the same price. "
            "A stable mount matters as much as the optics for a sharp view of faint galaxies.",
            "Observing the Moon": "The Moon looks best near the terminator, the line between day and night, where shadows make "
            "craters and mountains stand out. Avoid the full Moon, which is flat and glaring.",
            "Finding Jupiter": "Jupiter is the brightest point of light after Venus and does not twinkle. Through binoculars its "
            "four large moons appear as a line of small stars beside the planet.",
        },
    ),
    "money/finance.md": (
        "Personal finance",
        {
            "Building an emergency fund": "Keep three to six months of living expenses in an instant access savings account. "
            "The fund pays for a broken boiler or a lost job without new debt.",
            "Paying off credit cards": "Pay the card with the highest interest rate first while making the minimum payment on the "
            "others. Interest on revolving credit card balances costs far more than savings earn.",
            "Saving for retirement": "Contribute to a pension early so compound growth works for decades, and take the full "
            "employer match, which is free money added to your retirement savings.",
        },
    ),
    "pets/dog-training.md": (
        "Dog training",
        {
            "Teaching sit": "Hold a treat above the puppy's nose and move it back over the head; as the dog lowers its bottom, "
            "say sit and reward at once. Repeat in short sessions several times a day.",
            "Walking on a loose leash": "Stop walking whenever the dog pulls and continue only when the lead is slack again. "
            "Reward the dog for staying close to your leg on walks.",
            "Crate training a puppy": "Make the crate a comfortable den with a blanket and feed meals inside it. Close the door "
            "for short periods at first and never use the crate as punishment.",
        },
    ),
}

API_REFERENCE = """# json — JSON encoder and decoder

The json module converts between Python objects and JSON text.

json.dumps(obj, indent=None)

Serialize a Python object to a JSON formatted string. Dictionaries become JSON objects, lists become arrays, and the indent argument pretty-prints nested structures.

json.loads(s)

Deserialize a string containing a JSON document into Python objects, turning objects into dictionaries and arrays into lists.
"""

# Never indexed, mined or trained on: questions and the passages that answer them.
HELD_BACK = [
    (
        "how long should coffee steep in a French press",
        "Grind the coffee coarsely for a French press and let it steep for four minutes before pressing the plunger down slowly.",
    ),
    (
        "how often should I change the smoke alarm battery",
        "Replace the smoke alarm battery once a year and press the test button every month; alarms older than ten years should be replaced.",
    ),
    (
        "how do I get a red wine stain out of a shirt",
        "To remove a red wine stain, blot the spill at once, cover it with salt and wash the fabric in cold water.",
    ),
]


def _markdown(title: str, sections: dict[str, str]) -> str:
    return f"# {title}\n\n" + "".join(f"## {heading}\n\n{body}\n\n" for heading, body in sections.items())


def write_topics(root: Path) -> Path:
    for rel, (title, sections) in TOPICS.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(_markdown(title, sections), encoding="utf-8")
    (root / "reference").mkdir(exist_ok=True)
    (root / "reference/json.md").write_text(API_REFERENCE, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def topic_index(tmp_path_factory, encoders, parser_pool):
    """(settings, store, searcher): the topic corpus ingested by the real pipeline (embedded store)."""
    from ingest.pipeline import IngestPipeline
    from retrieval.search import HybridSearcher
    from retrieval.store.edge import EdgeStore

    root = write_topics(tmp_path_factory.mktemp("topics"))
    data_dir = tmp_path_factory.mktemp("topics-index")
    settings = retrieval_settings(data_dir, collection="topics")
    store = EdgeStore(data_dir)
    dense, sparse = encoders
    report = IngestPipeline(settings, store, dense, sparse, parser_pool=parser_pool).run(root, source="topics")
    assert not report.failures, report.failures
    yield settings, store, HybridSearcher(store, dense, sparse, settings)
    store.close()


@pytest.fixture(scope="module")
def mined(topic_index):
    settings, store, searcher = topic_index
    config = MiningConfig(max_pairs=None, hard_negatives=2, random_negatives=1, dev_fraction=0.0, seed=7)
    return PairMiner(store, settings.collection, searcher, config).mine()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mined):
    """A short real fine-tune on every mined pair, saved to a folder."""
    pairs, _ = mined
    out = tmp_path_factory.mktemp("reranker")
    config = TrainingConfig(max_length=MAX_LENGTH, queries_per_step=4, learning_rate=1e-4, epochs=2, checkpoint_steps=10, seed=3)
    trainer = RerankerTrainer(out, pairs, config)
    return trainer.train(), trainer


# --- mining ------------------------------------------------------------------------------------


def test_mining_pairs_headings_titles_and_terms_with_their_own_text(mined, topic_index):
    pairs, report = mined
    settings, store, _ = topic_index
    by_query = {p.query: p for p in pairs}
    assert report.chunks == len(read_passages(store, settings.collection))

    heading = by_query["Fixing a flat tyre"]
    assert heading.kind == "heading" and heading.path == "sport/bicycle.md"
    assert heading.section.endswith("Fixing a flat tyre")
    assert heading.positive.startswith("Lever the tyre off the rim")

    title = by_query["Amateur astronomy"]
    assert title.kind == "title" and title.path == "hobby/astronomy.md"

    term = by_query["json.dumps(obj, indent=None)"]
    assert term.kind == "term" and term.positive.startswith("Serialize a Python object")
    assert "json.dumps(obj" not in term.positive  # the query is cut out of its positive
    assert "json.loads(s)" not in term.positive  # the description stops at the next term


def test_negatives_come_from_other_documents_and_are_not_the_positive(mined, topic_index):
    pairs, _ = mined
    settings, store, _ = topic_index
    texts_by_doc: dict[str, set[str]] = {}
    for passage in read_passages(store, settings.collection):
        texts_by_doc.setdefault(passage.doc_id, set()).add(passage.text)
    assert pairs and all(pair.negatives for pair in pairs)
    for pair in pairs:
        own = texts_by_doc[pair.doc_id]
        for negative in pair.negatives:
            assert negative not in own, (pair.query, negative[:60])
            assert negative != pair.positive


def test_ambiguous_and_excluded_queries_are_dropped(topic_index):
    settings, store, _ = topic_index
    passages = read_passages(store, settings.collection)
    twin = passages[0].__class__(**{**passages[0].__dict__, "id": "x", "doc_id": "other-doc", "path": "other.md"})
    candidates, ambiguous, _ = find_candidates(passages + [twin], MiningConfig())
    assert ambiguous >= 2  # the copied document repeats its title and heading
    assert normalise_query(twin.title) not in {normalise_query(c.query) for c in candidates}

    excluded = frozenset({normalise_query("Watering tomatoes")})
    candidates, _, count = find_candidates(passages, MiningConfig(exclude_queries=excluded))
    assert count == 1 and "Watering tomatoes" not in {c.query for c in candidates}


def test_mining_is_deterministic_for_a_seed(topic_index, mined):
    settings, store, searcher = topic_index
    config = MiningConfig(max_pairs=10, seed=7, dev_fraction=0.0)
    first, _ = PairMiner(store, settings.collection, searcher, config).mine()
    again, _ = PairMiner(store, settings.collection, searcher, config).mine()
    assert first == again and len(first) == 10
    other, _ = PairMiner(store, settings.collection, searcher, MiningConfig(max_pairs=10, seed=8, dev_fraction=0.0)).mine()
    assert [p.query for p in other] != [p.query for p in first]


def test_term_detection():
    assert is_term("os.path.join(path, *paths)")
    assert is_term("class collections.OrderedDict([items])")
    assert is_term("str.join(iterable) -> str")
    assert is_term("os.sep")
    assert not is_term("Return a normalized absolutized version of the pathname path.")
    assert not is_term("Note")


def test_mined_pairs_round_trip_through_the_training_folder(tmp_path, mined):
    pairs, report = mined
    config = MiningConfig(max_pairs=None, seed=7, groups=("public",), exclude_queries=frozenset({"a"}))
    data = MinedData(pairs, report, config, "index :: topics", "cairn train-reranker --from-index")
    save_mined(tmp_path, data)
    assert load_mined(tmp_path) == data


# --- training ----------------------------------------------------------------------------------


def test_training_lowers_the_loss(trained, mined):
    result, trainer = trained
    pairs, _ = mined
    assert result.finished and result.steps == trainer.total_steps
    before, after = _score(TrainingConfig().base_model, pairs), _score(str(result.out), pairs)
    assert after.loss < before.loss, (before, after)
    assert after.mrr > before.mrr, (before, after)
    first, last = result.losses[:3], result.losses[-3:]
    assert sum(last) / 3 < sum(first) / 3, result.losses


def test_saved_model_loads_offline_through_the_reranker_and_ranks_held_back_passages_first(trained, topic_index):
    from retrieval.rerank import CrossEncoderReranker, build_reranker

    result, _ = trained
    settings, store, _ = topic_index
    config = json.loads((result.out / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert (result.out / "model.safetensors").stat().st_size < 60_000_000  # fp16 (fp32 MiniLM-L6 is ~90 MB)

    reranker = build_reranker(settings.model_copy(update={"reranker": "auto", "reranker_model": str(result.out)}).rerank)
    assert isinstance(reranker, CrossEncoderReranker) and reranker.available, reranker.unavailable_reason
    assert str(reranker._model.model.dtype) == "torch.float32"  # fp16 on disk, fp32 on the CPU

    indexed = [p.text for p in read_passages(store, settings.collection)][:3]
    for question, relevant in HELD_BACK:
        others = [passage for q, passage in HELD_BACK if q != question] + indexed
        scores = reranker.score(question, [relevant] + others)
        assert scores[0] == max(scores), (question, scores)


def test_resume_continues_from_the_last_checkpoint(tmp_path, mined):
    pairs, _ = mined
    small = TrainingConfig(max_length=64, queries_per_step=4, max_steps=4, checkpoint_steps=2, seed=5)
    with pytest.raises(TrainingError, match="no complete checkpoint"):
        RerankerTrainer(tmp_path, pairs, small).train(resume=True)
    stopped = RerankerTrainer(tmp_path, pairs, TrainingConfig(**{**small.__dict__, "time_limit_s": 0.0})).train()
    assert stopped.steps == 1 and not stopped.finished  # a zero time limit stops after the first step
    resumed = RerankerTrainer(tmp_path, pairs, small).train(resume=True)
    assert resumed.steps == 4 and resumed.finished
    assert resumed.losses[0] == stopped.losses[0] and len(resumed.losses) == 4
    checkpoints = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert checkpoints == ["step-0000002", "step-0000004"]  # only the newest two are kept
    with pytest.raises(TrainingError, match="pairs in .* changed"):
        RerankerTrainer(tmp_path, pairs[1:], small).train(resume=True)


def test_cli_mines_trains_resumes_and_writes_a_model_card(tmp_path, monkeypatch):
    """The user's path: `cairn ingest FOLDER`, then `cairn train-reranker --from-index`, then --resume."""
    from typer.testing import CliRunner

    from cairn.cli import app

    monkeypatch.setenv("CAIRN_DATA_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("CAIRN_COLLECTION", "topics")
    runner = CliRunner()
    ingested = runner.invoke(app, ["ingest", str(write_topics(tmp_path / "docs")), "--json"])
    assert ingested.exit_code == 0, ingested.output

    out = tmp_path / "model"
    args = ["train-reranker", "--from-index", "--out", str(out), "--pairs", "12", "--max-steps", "2",
            "--max-length", "64", "--corpus-licence", "test text (CC0)"]
    trained = runner.invoke(app, args)
    assert trained.exit_code == 0, trained.output
    card = (out / "README.md").read_text()
    assert "test text (CC0)" in card and "Steps: 2 of 2" in card and "sentence-transformers/all-MiniLM-L6-v2" in card
    assert len((out / "pairs.jsonl").read_text().splitlines()) == 12
    assert json.loads((out / "training.json").read_text())["result"]["steps"] == 2

    resumed = runner.invoke(app, ["train-reranker", "--resume", "--out", str(out), "--max-steps", "3"])
    assert resumed.exit_code == 0, resumed.output
    assert "Steps: 3 of 3" in (out / "README.md").read_text()

    usage = runner.invoke(app, ["train-reranker", "--out", str(out)])
    assert usage.exit_code == 2 and "--from-index" in usage.output
    missing = runner.invoke(app, ["train-reranker", "--from-index", "--collection", "nope", "--out", str(tmp_path / "x")])
    assert missing.exit_code == 3 and "does not exist" in missing.output


def _score(model: str, pairs):
    from reranker_training.training import load_cross_encoder

    return score_ranking(load_cross_encoder(model, MAX_LENGTH), pairs)
