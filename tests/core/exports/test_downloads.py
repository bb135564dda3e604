"""core.exports.downloads: images with recipes, ZIP of a selection, metadata and ledger CSV."""

from __future__ import annotations

import csv
import io
import json
import zipfile

from core.exports import downloads as exporting
from core.history.store import Store
from core.history.views import JobFilter
from core.images import recipe
from tests.seeding import seed_jobs


def test_zip_has_every_job_and_recipes_in_the_images():
    store = Store()
    seeded = seed_jobs(store, 20)
    ids = seeded.newest_first[:10]
    zf = zipfile.ZipFile(io.BytesIO(exporting.build_zip(store, ids)))
    rows = list(csv.DictReader(io.StringIO(zf.read("metadata.csv").decode())))
    assert [r["job_id"] for r in rows] == ids  # the order picked
    assert set(rows[0]) == set(exporting.METADATA_FIELDS)
    data = json.loads(zf.read("metadata.json"))
    assert len(data["jobs"]) == 10
    for row in rows:
        if row["image"]:
            carried = recipe.extract(zf.read(row["image"]))
            assert carried["job_id"] == row["job_id"] and carried["provider"] == row["provider"]
            assert carried["params"]["prompt"] == row["prompt"]
            assert "key" not in json.dumps(carried).lower().replace("idempotency", "")
        else:
            assert row["status"] != "succeeded" and row["error_message"]


def test_image_with_recipe_keeps_the_pixels():
    store = Store()
    seed_jobs(store, 3)
    job = store.list_jobs(JobFilter(statuses=("succeeded",)), limit=1)[0]
    image = job.images[0]
    out = exporting.image_with_recipe(job, image)
    from PIL import Image

    with Image.open(io.BytesIO(out)) as a, Image.open(image.path) as b:
        assert a.tobytes() == b.tobytes()
    assert exporting.image_file_name(job, image).endswith(f"_{job.provider}_{job.quality}_{job.id[:8]}.png")


def test_selection_report_is_one_self_contained_file():
    store = Store()
    seeded = seed_jobs(store, 8)
    html = exporting.selection_report(store, seeded.job_ids, "Q3 poster round")
    assert "<title>Q3 poster round</title>" in html
    assert html.count("data:image/jpeg;base64,") >= 5
    assert 'src="http' not in html
