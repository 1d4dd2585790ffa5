"""Writing a benchmark's results: the JSON report and its Markdown table, side by side."""

import json

__all__ = ["write_report"]


def write_report(output, stem, report, header, rows):
    """Write ``output/<stem>.json`` (``report``) and ``output/<stem>.md`` (a table with
    ``header`` cells and one list of cells per row), and say where."""
    output.mkdir(parents=True, exist_ok=True)
    json_path, markdown_path = output / f"{stem}.json", output / f"{stem}.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    markdown_path.write_text("\n".join(lines) + "\n")
    print(f"wrote {json_path} and {markdown_path}")
