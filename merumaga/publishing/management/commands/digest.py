import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from merumaga.publishing import digest, drafting, llm


class Command(BaseCommand):
    help = (
        "Print a digest draft of an article (Markdown or plain text): the sentences that carry "
        "its main content, within --chars characters, in the article's order; or, with --backend "
        "llm, the configured language model's draft, checked against the article."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--chars", type=int, default=200, help="the budget (default 200)")
        parser.add_argument("--backend", choices=["offline", "llm"], default="offline")
        parser.add_argument("--json", action="store_true", dest="as_json")

    def handle(self, *args, file: Path, chars: int, backend: str, as_json: bool, **options):
        if backend == "llm" and not llm.configured():
            raise CommandError("--backend llm needs MERUMAGA_LLM_BASE_URL (see README)")
        if chars < 20:
            raise CommandError("--chars must be at least 20")
        try:
            text = file.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"{file}: {error}") from None
        found = drafting.draft(text, chars) if backend == "llm" else digest.draft(text, chars)
        if found.notice:
            self.stderr.write(found.notice)
        if as_json:
            self.stdout.write(json.dumps(drafting.as_json(found), ensure_ascii=False, indent=1))
        else:
            self.stdout.write(found.digest)
            for sentence in found.sentences:
                for start, end in sentence.unsupported:
                    self.stderr.write(f"not in the article: {sentence.text[start:end]}")
