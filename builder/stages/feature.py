"""The agents Dev Container Feature, made from a variant's data: its agent tools (npm
packages, pins, settings) and the archive tools that give an image its Node. What it
writes is what `devcontainer features package/publish` takes: a folder with
devcontainer-feature.json, install.sh and the install-archive helper base uses too."""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from builder.engine import cosign, devcontainer, oci
from builder.model.config import FeatureConfig, Settings
from builder.model.errors import FactoryError
from builder.model.files import write_atomically
from builder.model.records import PublishedFeature
from builder.model.tools import Tool
from builder.model.variants import Variant, VariantSet
from builder.stages.templating import environment

HELPER = "install-archive"
TEMPLATE = "feature/install.sh.j2"
SCRIPT_MOUNT = "/tmp/hjk-agents-feature"
"""Where the Dockerfile fragment mounts the Feature's folder during its RUN step."""


def option_env(option_id: str) -> str:
    """The variable a Features client sets for an option: upper case, other characters `_`."""
    return re.sub(r"[^A-Za-z0-9_]", "_", option_id).upper()


@dataclass(frozen=True)
class Agent:
    name: str
    package: str
    version: str
    files: tuple[tuple[str, str], ...]

    @property
    def version_option(self) -> str:
        return f"{self.name}Version"

    @property
    def enabled_env(self) -> str:
        return option_env(self.name)

    @property
    def version_env(self) -> str:
        return option_env(self.version_option)


@dataclass(frozen=True)
class Feature:
    """A Feature's source folder, in memory."""

    id: str
    version: str
    files: dict[str, str]
    """File name -> text: devcontainer-feature.json, install.sh, install-archive."""
    env: dict[str, str]
    """containerEnv: the agents' settings that are variables."""

    def write(self, folder: Path) -> Path:
        """Write the folder (FOLDER/<id>/...), as `devcontainer features package` expects
        below its source folder; return the Feature's own folder."""
        home = folder / self.id
        for name, text in self.files.items():
            path = write_atomically(home / name, text)
            path.chmod(0o755 if text.startswith("#!") else 0o644)
        return home

    def dockerfile_fragment(self, context_folder: str) -> str:
        """The same install for a plain Dockerfile: the Feature's folder (written by
        `hjk-images feature --out CONTEXT_FOLDER`) mounted for one RUN step."""
        env = "".join(f"ENV {key}={json.dumps(value)}\n" for key, value in sorted(self.env.items()))
        return (
            f"# The {self.id} Feature {self.version} (hjk-images feature --dockerfile): the agent CLIs at\n"
            "# the factory's pins, their settings, and Node where the image has none. Options as\n"
            f"# in devcontainer-feature.json, e.g. {option_env('claude')}=false.\n"
            "USER root\n"
            f"RUN --mount=type=bind,source={context_folder}/{self.id},target={SCRIPT_MOUNT} \\\n"
            f"    sh {SCRIPT_MOUNT}/install.sh\n"
            f"{env}"
        )


def _tool(variant: Variant, name: str, field: str) -> Tool:
    tool = next((t for t in variant.tools if t.name == name), None)
    if tool is None:
        raise FactoryError(f"factory.yaml: feature.{field}: variant '{variant.name}' has no tool '{name}'")
    return tool


def configured(variants: VariantSet, settings: Settings) -> Feature:
    """The Feature the factory config's `feature:` describes, from its variant in VARIANTS."""
    config = settings.config.feature
    if config is None:
        raise FactoryError("factory.yaml: no `feature:` section, so no agents Feature is made")
    if config.variant not in variants:
        raise FactoryError(f"factory.yaml: feature.variant: no variant named '{config.variant}'")
    return make_feature(variants[config.variant], config, settings)


def make_feature(variant: Variant, config: FeatureConfig, settings: Settings) -> Feature:
    """The Feature for CONFIG from VARIANT's tools."""
    node_tools = [_tool(variant, name, "node") for name in config.node]
    for tool in node_tools:
        if tool.source != "archive":
            raise FactoryError(f"factory.yaml: feature.node: tool '{tool.name}' is not an archive "
                               f"(the Feature installs Node from checked downloads)")
    node = next((t for t in node_tools if t.name == "node"), None)
    if node is None:
        raise FactoryError("factory.yaml: feature.node: names no tool 'node'")
    agents = []
    for name in config.tools:
        tool = _tool(variant, name, "tools")
        if tool.source != "npm":
            raise FactoryError(f"factory.yaml: feature.tools: tool '{name}' is not an npm package")
        agents.append(Agent(tool.name, tool.package_name, tool.version, tuple(sorted(tool.settings.files.items()))))
    env = {key: value for name in config.tools for key, value in _tool(variant, name, "tools").settings.env.items()}
    node_major = int(node.version.split(".")[0])

    script = environment((settings.templates_dir,)).get_template(TEMPLATE).render(
        id=config.id, version=config.version, variant=variant.name, agents=agents, node_tools=node_tools,
        node_major=node_major,
    )
    metadata = {
        "id": config.id,
        "version": config.version,
        "name": "Agent CLIs (" + ", ".join(a.name for a in agents) + ")",
        "description": (f"The agent CLIs of the Headjack images' `{variant.name}` at their pinned versions, "
                        f"self-update off, with Node {node_major} where the image has none."),
        "documentationURL": f"{settings.config.source_url}#use-the-agents-in-your-own-image",
        "licenseURL": f"{settings.config.source_url}/blob/main/LICENSE",
        "options": {
            **{option: spec for agent in agents for option, spec in (
                (agent.name, {"type": "boolean", "default": True, "description": f"Install {agent.package}"}),
                (agent.version_option, {
                    "type": "string", "default": agent.version, "proposals": [agent.version, "latest"],
                    "description": f"{agent.package} version: the pin (default), another exact "
                                   "version, or `latest` (unpinned: whatever npm serves then)",
                }),
            )},
            "installNode": {
                "type": "string", "enum": ["auto", "always", "never"], "default": "auto",
                "description": f"auto: install Node {node.version} (and npm) only when no Node >= "
                               f"{node_major} with npm is on PATH",
            },
        },
        "containerEnv": env,
        "installsAfter": list(config.installs_after),
    }
    helper = (settings.templates_dir / "files" / "common" / HELPER).read_text(encoding="utf-8")
    return Feature(config.id, config.version, {
        "devcontainer-feature.json": json.dumps(metadata, indent=2) + "\n",
        "install.sh": script,
        HELPER: helper,
    }, env)


def repository_of(registry: str, namespace: str, feature_id: str) -> str:
    """Where the Feature is published: beside the images, under NAMESPACE/features/."""
    return f"{registry}/{namespace}/features/{feature_id}"


def published_digest(feature: Feature, repository: str) -> str | None:
    """The digest of FEATURE's version in REPOSITORY when it holds exactly these files; None
    when that version isn't there. A version published with other files raises: a published
    version never changes (clients pin `:1.2.0`), so new content needs a new version."""
    reference = f"{repository}:{feature.version}"
    digest = oci.lookup(reference)
    if digest is None:
        return None
    held = oci.artifact_files(reference)
    differing = sorted(name for name in set(held) | set(feature.files)
                       if held.get(name) != feature.files.get(name, "").encode())
    if differing:
        raise FactoryError(f"{reference} is published with other content ({', '.join(differing)} differ): "
                           f"a published version never changes; raise feature.version in factory.yaml")
    return digest


def publish(feature: Feature, repository: str, cli: str, key: Path | None, *, sign: bool) -> PublishedFeature:
    """Publish FEATURE to REPOSITORY (unless that version is there with these files), read it
    back, and sign it by digest."""
    found = published_digest(feature, repository)
    if found is None:
        registry, path = repository.split("/", 1)
        with tempfile.TemporaryDirectory(prefix="hjk-feature-") as tmp:
            home = feature.write(Path(tmp))
            answer = devcontainer.publish_feature(cli, home, registry, path.rsplit("/", 1)[0])
        said = answer.get(feature.id) or {}
        found = published_digest(feature, repository)  # the read-back: what clients will get
        if found is None or said.get("digest") not in (None, found):
            raise FactoryError(f"{repository}:{feature.version} is not in the registry after publishing it")
        tags = [str(t) for t in said.get("publishedTags") or []]
        pushed = True
    else:
        tags, pushed = [], False
    if sign:
        cosign.sign(f"{repository}@{found}", key)
    return PublishedFeature(id=feature.id, version=feature.version, repository=repository, digest=found,
                            tags=tags, pushed=pushed, signed=sign)
