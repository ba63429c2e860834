import json
from dataclasses import asdict
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from merumaga.publishing import digest


class Command(BaseCommand):
    help = (
        "Print a digest draft of an article (Markdown or plain text): the sentences that carry "
        "its main content, within --chars characters, in the article's order."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--chars", type=int, default=200, help="the budget (default 200)")
        parser.add_argument("--backend", choices=["offline", "llm"], default="offline")
        parser.add_argument("--json", action="store_true", dest="as_json")

    def handle(self, *args, file: Path, chars: int, backend: str, as_json: bool, **options):
        if backend == "llm":
            raise CommandError("the LLM backend is not available yet: use --backend offline")
        if chars < 20:
            raise CommandError("--chars must be at least 20")
        try:
            text = file.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"{file}: {error}") from None
        found = digest.draft(text, chars)
        if as_json:
            answer = {
                "digest": found.digest,
                "sentences": [asdict(sentence) for sentence in found.sentences],
                "backend": found.backend,
            }
            self.stdout.write(json.dumps(answer, ensure_ascii=False, indent=1))
        else:
            self.stdout.write(found.digest)
