"""The contract with lume-services: results, settings and image, checked on both sides.

Every contract runs against this package's implementation always, and against
lume-services when it is importable. lume-services is not on PyPI and its pinned
commit cannot be installed here or in this project's CI (README: "lume-services"),
so the lume-services cases skip with that reason; install the ``services`` extra
to run them.
"""

import importlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from pymongo import MongoClient

from my_package import services
from my_package.config import ResultsDBSettings, Settings
from my_package.results import Result
from my_package.targets import MongoTarget

LUME_SERVICES_MISSING = (
    "lume-services is not installed: it is not on PyPI and its pinned commit cannot be "
    "installed here; pip install 'my-package[services]' to run this side of the contract"
)
# lume-services' documented check value (FACTS.md): md5 of the json of inputs, outputs, flow_id.
CHECK = {"inputs": {"x": 1.0}, "outputs": {"z": 2.0}, "flow_id": "local-test"}
CHECK_HASH = "b5047ca2716aa537e50b42b520666e6f"
DOCUMENT_KEYS = {
    "flow_id",
    "inputs",
    "outputs",
    "date_modified",
    "unique_hash",
    "result_type_string",
}


@dataclass
class Side:
    """One implementation of lume-services' generic result."""

    name: str
    make: Callable[..., Any]  # (project_name=, flow_id=, inputs=, outputs=) -> result
    document: Callable[[Any], dict[str, Any]]  # result -> stored document
    load: Callable[[dict[str, Any], str], Any]  # (document, project_name) -> result


def _ours() -> Side:
    return Side("my_package", Result, Result.to_document, Result.from_document)


def _lume_services() -> Side:
    if not services.available():
        pytest.skip(LUME_SERVICES_MISSING)
    from lume_services.results.generic import Result as LumeServicesResult

    return Side(
        "lume-services",
        LumeServicesResult,
        lambda result: result.get_db_dict(),
        lambda document, project_name: LumeServicesResult(project_name=project_name, **document),
    )


@pytest.fixture(params=["my_package", "lume-services"])
def side(request: pytest.FixtureRequest) -> Side:
    return _ours() if request.param == "my_package" else _lume_services()


# -- results ----------------------------------------------------------------------------


def test_unique_hash_check_value(side: Side) -> None:
    assert side.make(project_name="local", **CHECK).unique_hash == CHECK_HASH


def test_unique_hash_of_an_array_is_that_of_its_list(side: Side) -> None:
    as_array = side.make(flow_id="f", inputs={"x": np.array([1.0, 2.5])}, outputs={"z": 1.0})
    as_list = side.make(flow_id="f", inputs={"x": [1.0, 2.5]}, outputs={"z": 1.0})
    assert as_array.unique_hash == as_list.unique_hash


def test_project_name_is_the_collection_and_defaults_to_local(side: Side) -> None:
    assert side.make(**CHECK).project_name == "local"
    assert side.make(collection="my_project", **CHECK).project_name == "my_project"


def test_stored_document_has_lume_services_keys_and_result_type(side: Side) -> None:
    document = side.document(side.make(project_name="p", **CHECK))
    assert set(document) == DOCUMENT_KEYS
    assert document["result_type_string"] == "lume_services.results.generic.Result"
    assert document["unique_hash"] == CHECK_HASH


def test_document_saved_by_our_mongodb_target_loads_on_each_side(
    side: Side, mongo_server: tuple[str, int]
) -> None:
    host, port = mongo_server
    result = Result(
        project_name="contract",
        flow_id="contract-run",
        inputs={"x": np.linspace(-1.0, 1.0, 5), "y": 10.0},
        outputs={"z": np.linspace(0.1, 0.5, 5)},
    )
    with MongoTarget(ResultsDBSettings(host=host, port=port, database="contract")) as target:
        ref = target.save(result)
    # The document as any MongoDB client (lume-services' included) reads it.
    with MongoClient(host=host, port=port, tz_aware=True) as client:
        stored = client["contract"][ref.project_name].find_one({"unique_hash": ref.unique_hash})
    stored.pop("_id")

    loaded = side.load(stored, ref.project_name)
    assert loaded.unique_hash == result.unique_hash
    assert loaded.project_name == "contract"
    assert np.allclose(loaded.inputs["x"], result.inputs["x"])


def test_document_written_by_each_side_loads_in_ours(side: Side) -> None:
    written = side.make(project_name="p", **CHECK)
    loaded = Result.from_document(side.document(written), "p")
    assert loaded.unique_hash == CHECK_HASH
    assert (loaded.flow_id, loaded.inputs, loaded.outputs) == ("local-test", {"x": 1.0}, {"z": 2.0})


def test_adapter_round_trip(side: Side) -> None:
    ours = Result(project_name="p", **CHECK)
    # from_lume_services takes any object with lume-services' fields: ours has them.
    other = ours if side.name == "my_package" else services.to_lume_services(ours)
    back = services.from_lume_services(other)
    assert back == ours
    assert back.unique_hash == CHECK_HASH


def test_adapter_refuses_a_result_whose_hash_disagrees() -> None:
    class Tampered:
        project_name, flow_id, inputs, outputs = "p", "local-test", {"x": 1.0}, {"z": 2.0}
        date_modified = Result(**CHECK).date_modified
        unique_hash = "0" * 32

    with pytest.raises(ValueError, match="not the pinned commit"):
        services.from_lume_services(Tampered())


def test_adapter_says_how_to_install_lume_services() -> None:
    if services.available():
        pytest.skip("lume-services is installed")
    with pytest.raises(ImportError, match=r"my-package\[services\]"):
        services.to_lume_services(Result(**CHECK))


# -- settings: one environment configures both ------------------------------------------

ENVIRONMENT = {
    "LUME_RESULTS_DB__HOST": "mongo.example.org",
    "LUME_RESULTS_DB__PORT": "27018",
    "LUME_RESULTS_DB__USERNAME": "lume",
    "LUME_RESULTS_DB__PASSWORD": "not-a-real-password",
    "LUME_RESULTS_DB__DATABASE": "model_results",
    "LUME_RESULTS_DB__AUTHMECHANISM": "SCRAM-SHA-256",
    "LUME_BACKEND": "kubernetes",
}
EXPECTED_SETTINGS = {
    "host": "mongo.example.org",
    "port": 27018,
    "username": "lume",
    "password": "not-a-real-password",
    "database": "model_results",
    "authmechanism": "SCRAM-SHA-256",
    "backend": "kubernetes",
}


def _read_settings(settings: Any) -> dict[str, Any]:
    db = settings.results_db
    return {
        "host": db.host,
        "port": db.port,
        "username": db.username,
        "password": db.password.get_secret_value(),
        "database": db.database,
        "authmechanism": db.authmechanism,
        "backend": settings.backend,
    }


@pytest.mark.parametrize("name", ["my_package", "lume-services"])
def test_lume_environment_variables_configure_each_side_alike(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env file
    for key in [k for k in os.environ if k.startswith("LUME_")]:
        monkeypatch.delenv(key)
    for key, value in ENVIRONMENT.items():
        monkeypatch.setenv(key, value)
    if name == "my_package":
        settings = Settings()
    else:
        if not services.available():
            pytest.skip(LUME_SERVICES_MISSING)
        from lume_services.config import LUMEServicesSettings

        settings = LUMEServicesSettings()
    assert _read_settings(settings) == EXPECTED_SETTINGS


def test_settings_never_show_the_password(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LUME_RESULTS_DB__PASSWORD", "not-a-real-password")
    assert "not-a-real-password" not in repr(Settings()) + str(Settings().model_dump())


# -- image: lume-services reads <package>._image.IMAGE -----------------------------------

# registry/owner/name:tag, tag as Docker allows it.
IMAGE_REFERENCE = re.compile(
    r"^[a-z0-9.-]+(:\d+)?(/[a-z0-9._-]+)+:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
)


def test_image_constant_is_a_registry_image_reference() -> None:
    image = importlib.import_module("my_package._image")
    assert IMAGE_REFERENCE.match(image.IMAGE), image.IMAGE
    assert image.IMAGE.startswith(image.REPOSITORY + ":")


@pytest.mark.parametrize(
    ("version", "tag"),
    [
        ("1.2.0", "1.2.0"),
        ("2.0", "2.0"),
        ("1.3.0rc1", "1.3.0rc1"),
        ("0.1.dev3+g1234abc", "latest"),  # untagged commit: no image was pushed for it
        ("1.2.1.dev0", "latest"),
        ("0.0.0", "latest"),  # setuptools-scm's fallback without a tag
        (None, "latest"),  # not installed
    ],
)
def test_image_tag_is_the_release_version(version: str | None, tag: str) -> None:
    from my_package._image import image_tag

    assert image_tag(version) == tag


def test_image_can_be_overridden_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import my_package._image as image

    monkeypatch.setenv("MY_PACKAGE_IMAGE", "scr.svc.stanford.edu/group/my-package:1.0.0")
    try:
        assert importlib.reload(image).IMAGE == "scr.svc.stanford.edu/group/my-package:1.0.0"
    finally:
        monkeypatch.delenv("MY_PACKAGE_IMAGE")
        importlib.reload(image)
