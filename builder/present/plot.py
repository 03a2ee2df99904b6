"""Where each image's bytes go, as a picture: one stacked bar per (variant, platform) image,
compressed sizes from the build record. From the bottom: the root, what the image
inherits from its parent variant, then each layer of its own, the big ones named by
the Dockerfile step that made them. SVG (text kept as text) or PNG, by the file's suffix.
"""

from __future__ import annotations

from pathlib import Path

from builder.model.records import PlatformBuild

MB = 1e6
ROOT_COLOUR, INHERITED_COLOUR = "#8c8c8c", "#c7c7c7"
OWN_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
NAMED_SHARE = 0.06
"""An own layer at least this share of its image is named on the bar."""


def _label(step: str) -> str:
    step = " ".join(step.split())
    return step if len(step) <= 48 else step[:45] + "..."


def size_plot(builds: list[PlatformBuild], inherited: dict[str, int], path: Path) -> None:
    """Draw BUILDS (those with layer sizes) into PATH. INHERITED: build key -> how many of its
    layers (the root's included) come from its parent."""
    drawn = [b for b in builds if b.sizes and b.sizes.layers]
    if not drawn:
        raise ValueError("no image in the record has layer sizes to plot")
    if path.suffix.lower() not in (".svg", ".png"):
        raise ValueError(f"{path.name}: the plot is written as .svg or .png")
    # imported here: matplotlib takes a second and more to load, which only this command needs
    import matplotlib

    matplotlib.use("Agg")  # files only: no display
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    plt.rcParams["svg.fonttype"] = "none"
    figure, axes = plt.subplots(figsize=(max(7.0, 1.6 * len(drawn) + 4), 7))
    tallest = 0.0
    names = [f"{b.variant}\n{b.platform.split('/')[1]}" for b in drawn]
    for x, build in enumerate(drawn):
        assert build.sizes is not None
        layers = build.sizes.layers
        from_parent = inherited.get(build.key, 1)
        total = sum(layer.compressed for layer in layers)
        segments = [(layers[0].compressed, ROOT_COLOUR, "root")]
        if from_parent > 1:
            segments.append((sum(layer.compressed for layer in layers[1:from_parent]), INHERITED_COLOUR,
                             "from the parent variant"))
        for i, layer in enumerate(layers[from_parent:]):
            named = layer.compressed >= NAMED_SHARE * total
            segments.append((layer.compressed, OWN_COLOURS[i % len(OWN_COLOURS)],
                             _label(layer.step) if named else ""))
        bottom = 0.0
        for size, colour, label in segments:
            height = size / MB
            axes.bar(x, height, bottom=bottom, color=colour, edgecolor="white", linewidth=0.5, width=0.6)
            if label and size >= NAMED_SHARE * total:
                axes.text(x, bottom + height / 2, label, ha="center", va="center", fontsize=7, wrap=True)
            bottom += height
        axes.text(x, bottom, f"{total / MB:.0f} MB", ha="center", va="bottom", fontsize=9, fontweight="bold")
        tallest = max(tallest, bottom)
    axes.set_ylim(0, tallest * 1.08)
    axes.set_xticks(range(len(drawn)), names)
    axes.set_ylabel("compressed size (MB, as pulled from the registry)")
    axes.set_title("Compressed size per image, layer by layer", fontsize=11)
    axes.legend(handles=[Rectangle((0, 0), 1, 1, color=ROOT_COLOUR),
                         Rectangle((0, 0), 1, 1, color=INHERITED_COLOUR),
                         Rectangle((0, 0), 1, 1, color=OWN_COLOURS[0])],
                labels=["root", "from the parent variant", "the variant's own layers"],
                loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
