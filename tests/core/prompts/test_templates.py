"""core.prompts.templates: built-ins from the seeds, variables and batches, saved templates, the prompt builder."""

from __future__ import annotations

import json

import pytest

from core.prompts import templates as tp
from core.prompts.templates import Template, TemplateLibrary
from providers.errors import InvalidRequest


def by_name() -> dict[str, Template]:
    return {t.name: t for t in tp.builtin_templates()}


# --------------------------------------------------------------------------- built-ins


def test_the_seven_seed_examples_are_built_in():
    names = by_name()
    assert len(names) == 7
    portrait = names["Photoreal portrait: Japanese ceramicist"]
    assert "elderly Japanese ceramicist" in portrait.prompt
    assert (portrait.size, portrait.quality, portrait.output_format) == ("3:2", "high", "webp")
    comic = names["Four-panel comic strip"]
    assert comic.variables == ["animal"] and comic.defaults["animal"] == "cat"
    assert "refuses to get off a keyboard" in comic.prompt
    poster = names["Bilingual event poster"]
    assert poster.variables[0] == "headline" and {"date", "venue"} <= set(poster.variables)
    assert (poster.size, poster.quality) == ("3:2", "medium")
    assert "English and Japanese" in poster.prompt
    assert "eight poses" in names["Mascot character sheet"].prompt
    assert "water cycle" in names["Labelled infographic: water cycle"].expand()[0].prompt
    assert "fitness app" in names["Landing page mockup"].expand()[0].prompt
    edit = names["Portrait edit: winter coat and scarf"]
    assert edit.needs_image and "keeping the face and background unchanged" in edit.prompt
    assert [t.name for t in names.values() if t.needs_image] == [edit.name]


@pytest.mark.parametrize("template", tp.builtin_templates(), ids=lambda t: t.name)
def test_every_builtin_is_complete(template):
    assert template.builtin and template.description and template.source
    assert tp.malformed(template.prompt) == []
    assert set(template.variables) <= set(template.defaults)
    [only] = template.expand()
    assert "{{" not in only.prompt and "}}" not in only.prompt
    assert template.size in ("1:1", "3:2", "2:3")
    assert template.quality in ("low", "medium", "high", "auto")
    assert template.output_format in ("png", "jpeg", "webp")


# --------------------------------------------------------------------------- variables


def test_variables_in_order_of_first_appearance_trimmed():
    prompt = "A {{ animal }} on a {{thing}} near a {{animal}}, titled {{ first name }}"
    assert tp.variables(prompt) == ["animal", "thing", "first name"]


def test_malformed_braces_are_ignored_but_reported():
    prompt = "{{ok}} {{}} {{1st}} {{open and }} stray {{a{{b}} end {{never closed"
    assert tp.variables(prompt) == ["ok", "open and", "b"]
    problems = tp.malformed(prompt)
    assert any("{{}}" in p and "empty" in p for p in problems)
    assert any("{{1st}}" in p for p in problems)
    assert sum("never closed" in p for p in problems) == 2
    assert tp.malformed("no braces at all, or {{fine}}") == []
    assert any("no matching" in p for p in tp.malformed("oops }} here"))


def test_expand_makes_the_cartesian_product_in_order():
    prompt = "A {{animal}} in {{place}}"
    out = tp.expand(prompt, {"animal": ["cat", "dog"], "place": ["Tokyo", "Seoul", "Paris"]})
    assert len(out) == 6 == tp.batch_size({"animal": ["cat", "dog"], "place": ["Tokyo", "Seoul", "Paris"]})
    assert out[0].prompt == "A cat in Tokyo" and out[0].variables == {"animal": "cat", "place": "Tokyo"}
    assert out[1].prompt == "A cat in Seoul"
    assert out[-1].prompt == "A dog in Paris"


def test_expand_treats_strings_as_one_value_and_drops_blanks_and_repeats():
    out = tp.expand("A {{animal}} with {{thing}}", {"animal": "cat", "thing": ["hat", " ", "hat", "scarf"]})
    assert [e.prompt for e in out] == ["A cat with hat", "A cat with scarf"]
    assert tp.batch_size({"animal": "cat", "thing": ["hat", "", "hat", "scarf"]}) == 2


def test_expand_substitutes_every_occurrence_and_keeps_values_literal():
    out = tp.expand("{{x}} and {{ x }}: {{y}}", {"x": [r"C:\new\{{y}}"], "y": ["z"]})
    assert out[0].prompt == r"C:\new\{{y}} and C:\new\{{y}}: z"


def test_expand_refuses_a_variable_without_value():
    with pytest.raises(InvalidRequest) as err:
        tp.expand("A {{animal}} on {{thing}}", {"animal": ["cat"], "thing": ["", "  "]})
    assert err.value.field == "variables" and err.value.value == "thing"
    assert "{{thing}}" in str(err.value)


def test_expand_enforces_a_batch_limit():
    values = {"a": ["1", "2", "3"], "b": ["x", "y", "z", "w"]}
    with pytest.raises(InvalidRequest, match="make 12 prompts"):
        tp.expand("{{a}}{{b}}", values, limit=10)
    assert len(tp.expand("{{a}}{{b}}", values, limit=12)) == 12


def test_batch_size_counts_only_the_prompts_variables_when_given_one():
    values = {"a": ["1", "2"], "unused": ["x", "y", "z"]}
    assert tp.batch_size(values) == 6
    assert tp.batch_size(values, prompt="{{a}}") == 2
    assert tp.batch_size({}, prompt="no variables") == 1
    assert tp.batch_size({"a": []}, prompt="{{a}}") == 0


def test_template_values_fall_back_to_defaults():
    comic = by_name()["Four-panel comic strip"]
    prompts = [e.prompt for e in comic.expand({"animal": ["dog", "hamster"]})]
    assert len(prompts) == 2 and "about a dog who" in prompts[0]
    assert comic.values({"animal": ""}) == {"animal": ["cat"]}
    poster = by_name()["Bilingual event poster"]
    [one] = poster.expand({"headline": "Open Studio Night"})
    assert '"Open Studio Night"' in one.prompt and one.variables["venue"] == poster.defaults["venue"]


# --------------------------------------------------------------------------- saved templates


def mine(name="Product shot", prompt="A {{product}} on a marble table, studio light") -> Template:
    return Template(name=name, prompt=prompt, size="1:1", quality="low", defaults={"product": "watch"})


def test_saved_templates_persist(tmp_path):
    path = tmp_path / "templates.json"
    lib = TemplateLibrary(path)
    stored = lib.save(mine())
    assert not stored.builtin
    again = TemplateLibrary(path)
    names = [t.name for t in again.all()]
    assert names[:7] == [t.name for t in tp.builtin_templates()]
    assert names[7:] == ["Product shot"]
    loaded = again.get("product  SHOT")
    assert loaded == stored
    assert json.loads(path.read_text(encoding="utf-8"))["templates"][0]["defaults"] == {"product": "watch"}


def test_saving_the_same_name_replaces(tmp_path):
    lib = TemplateLibrary(tmp_path / "t.json")
    lib.save(mine())
    lib.save(mine(name="product shot", prompt="A {{product}} floating in mid-air"))
    saved = lib.saved()
    assert len(saved) == 1 and saved[0].prompt.endswith("mid-air")


def test_saved_templates_cannot_shadow_or_delete_builtins(tmp_path):
    lib = TemplateLibrary(tmp_path / "t.json")
    with pytest.raises(InvalidRequest, match="built-in"):
        lib.save(mine(name="four-panel COMIC strip"))
    with pytest.raises(InvalidRequest, match="cannot be deleted"):
        lib.delete("Four-panel comic strip")
    with pytest.raises(InvalidRequest):
        lib.save(mine(name="   "))


def test_delete(tmp_path):
    path = tmp_path / "t.json"
    lib = TemplateLibrary(path)
    lib.save(mine())
    lib.save(mine(name="Second"))
    assert lib.delete("Product shot") is True
    assert lib.delete("Product shot") is False
    assert [t.name for t in TemplateLibrary(path).saved()] == ["Second"]


def test_an_unreadable_file_is_kept_aside_not_lost(tmp_path):
    path = tmp_path / "t.json"
    path.write_text("{ not json", encoding="utf-8")
    lib = TemplateLibrary(path)
    assert len(lib.all()) == 7 and lib.load_error
    lib.save(mine())
    assert (tmp_path / "t.json.unreadable").read_text(encoding="utf-8") == "{ not json"
    assert [t.name for t in TemplateLibrary(path).saved()] == ["Product shot"]


# --------------------------------------------------------------------------- builder


def test_build_prompt_writes_every_part():
    prompt = tp.build_prompt(
        subject="a red fox sitting in fresh snow",
        style="watercolour illustration",
        composition="centred, wide margins",
        lighting="soft dawn light",
        text_to_render="冬の森",
        language="Japanese",
    )
    assert prompt.startswith("A red fox sitting in fresh snow. Style: watercolour illustration.")
    assert "Composition: centred, wide margins." in prompt and "Lighting: soft dawn light." in prompt
    assert 'With the text "冬の森" rendered exactly' in prompt
    assert "The text is in Japanese" in prompt and "do not translate" in prompt


def test_build_prompt_omits_empty_parts():
    assert tp.build_prompt(subject="  a lighthouse at night ") == "A lighthouse at night."
    assert tp.build_prompt() == ""
    only_text = tp.build_prompt(text_to_render="OPEN")
    assert only_text.startswith('With the text "OPEN" rendered exactly')
    assert "Style" not in only_text and "in ." not in only_text
    assert tp.build_prompt(subject="a menu board", language="Korean").endswith(
        "Any text in the image should be in Korean."
    )


def test_build_prompt_quotes_text_that_contains_quotes():
    assert '“Say "hi"”' in tp.build_prompt(text_to_render='Say "hi"')
