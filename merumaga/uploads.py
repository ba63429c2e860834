"""Uploads are checked by what they contain, not by their name or the browser's word."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")


def _head(upload, size: int = 16) -> bytes:
    position = upload.tell()
    upload.seek(0)
    head = upload.read(size)
    upload.seek(position)
    return head


def _check_size(upload, limit_mb: int) -> None:
    if upload.size > limit_mb * 1024 * 1024:
        raise ValidationError(
            _("ファイルが大きすぎます (%(size).1f MB)。上限は %(limit)d MB です。")
            % {"size": upload.size / 1024 / 1024, "limit": limit_mb}
        )


def validate_pdf(upload) -> None:
    _check_size(upload, settings.REPORT_MAX_MB)
    if not _head(upload).startswith(b"%PDF-"):
        raise ValidationError(_("PDFファイルではありません。PDF形式のファイルを選んでください。"))


def validate_image(upload) -> None:
    _check_size(upload, settings.COVER_MAX_MB)
    head = _head(upload)
    is_webp = head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    if not (head.startswith(IMAGE_SIGNATURES) or is_webp):
        raise ValidationError(_("画像ファイル (PNG, JPEG, GIF, WebP) を選んでください。"))
