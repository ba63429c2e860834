import io

import pytest
from django.core.management import CommandError, call_command

from merumaga.subscribers import csv_io, services
from merumaga.subscribers.models import ConsentRecord, Subscriber, Suppression, address_hash
from merumaga.testing import make_subscriber, subscribed_keys

pytestmark = pytest.mark.django_db

IMPORT = services.Evidence(source="import", user_agent="pytest")

SHIFT_JIS_CSV = (
    "メールアドレス,氏名,所属,配信種別\r\n"
    "yamada@example.jp,山田 太郎,東邦電池株式会社,weekly;events\r\n"
    "not-an-address,壊れた 行,,\r\n"
    "kimura@example.jp,木村 花子,,weekly;unknown\r\n"
    "YAMADA@example.jp,山田 (重複),,\r\n"
    '"sato@example.jp","佐藤\n改行",,\r\n'
    "ito@example.jp,伊藤 一,,\r\n"
).encode("cp932")


def run_import(data: bytes, source="2026年セミナー申込者"):
    return services.import_subscribers(data, source, IMPORT)


def test_shift_jis_file_with_bad_rows_imports_the_good_ones_and_reports_the_rest():
    report = run_import(SHIFT_JIS_CSV)
    assert report.encoding == "cp932"
    assert (report.rows, report.created, report.duplicates) == (6, 2, 1)
    problems = {error.line: error.message for error in report.errors}
    assert set(problems) == {3, 4, 5, 6}
    assert "形式" in problems[3] and "unknown" in problems[4]
    assert "2行目" in problems[5] and "改行" in problems[6]

    yamada = Subscriber.objects.get(email="yamada@example.jp")
    assert (yamada.name, yamada.organisation, yamada.status) == (
        "山田 太郎",
        "東邦電池株式会社",
        "confirmed",
    )
    assert subscribed_keys(yamada) == {"weekly", "events"}
    ito = Subscriber.objects.get(email="ito@example.jp")
    assert subscribed_keys(ito) == {"weekly", "articles", "reports", "events"}
    record = ito.consent_records.get()
    assert (record.source, record.wording) == ("import", "2026年セミナー申込者")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
def test_utf_encodings(encoding):
    data = "email,name\ntanaka@example.jp,田中 ①\n".encode(encoding)
    report = run_import(data)
    assert report.created == 1
    assert Subscriber.objects.get().name == "田中 ①"


def test_full_width_addresses_go_in_as_ascii_and_undeliverable_ones_are_reported():
    data = "email\nｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ\nテスト@example.jp\nhana@例え.jp\n".encode()
    report = run_import(data)
    assert report.created == 1
    assert list(Subscriber.objects.values_list("email", flat=True)) == ["taro@example.jp"]
    problems = {error.line: error.message for error in report.errors}
    assert set(problems) == {3, 4} and all("半角英数字" in m for m in problems.values())


def test_existing_readers_and_opt_outs_are_never_changed_by_an_import():
    make_subscriber("left@example.jp", status=Subscriber.Status.UNSUBSCRIBED, topics=[])
    Suppression.objects.create(
        address_hash=address_hash("bounced@example.jp"), reason="hard_bounce"
    )
    report = run_import(b"email\nleft@example.jp\nbounced@example.jp\nnew@example.jp\n")
    assert (report.created, report.existing, report.suppressed) == (1, 1, 1)
    assert Subscriber.objects.get(email="left@example.jp").status == "unsubscribed"
    assert not Subscriber.objects.filter(email="bounced@example.jp").exists()


def test_a_file_without_an_email_column_is_refused_whole():
    with pytest.raises(services.InvalidInput, match="email"):
        run_import(b"name,organisation\nx,y\n")
    assert not Subscriber.objects.exists()


def test_undecodable_bytes_are_refused_with_a_clear_message():
    with pytest.raises(services.InvalidInput, match="文字コード"):
        run_import(b"email\n\x81\x00\xff\xfe\x80\n")


def test_a_source_is_required():
    with pytest.raises(services.InvalidInput, match="取得元"):
        run_import(b"email\na@example.jp\n", source=" ")


def test_chunks_of_many_rows(monkeypatch):
    monkeypatch.setattr(services, "IMPORT_CHUNK_SIZE", 7)
    rows = "".join(f"r{n}@example.jp\n" for n in range(50))
    seen = []
    report = services.import_subscribers(
        ("email\n" + rows).encode(), "test", IMPORT, progress=lambda done, total: seen.append(done)
    )
    assert report.created == Subscriber.objects.count() == 50
    assert ConsentRecord.objects.count() == 50
    assert seen[-1] >= 50 and seen == sorted(seen)


def test_command_prints_a_summary(tmp_path):
    path = tmp_path / "list.csv"
    path.write_bytes(SHIFT_JIS_CSV)
    out, err = io.StringIO(), io.StringIO()
    call_command("import-subscribers", str(path), source="展示会名刺", stdout=out, stderr=err)
    assert "created=2" in out.getvalue() and "errors=4" in out.getvalue()
    assert "row 3" in err.getvalue()


def test_command_refuses_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        call_command("import-subscribers", str(tmp_path / "missing.csv"), source="x")


@pytest.mark.parametrize("value", ['=HYPERLINK("http://x")', "+1", "-2+3", "@SUM(A1)", "\tx"])
def test_export_neutralises_formulas(value):
    assert csv_io.safe_cell(value) == "'" + value
    assert csv_io.safe_cell("普通の名前") == "普通の名前"


def test_export_command_writes_safe_csv(tmp_path):
    make_subscriber("x@example.jp", name="=cmd|' /C calc'!A0", topics=["weekly"])
    path = tmp_path / "out.csv"
    call_command("export-subscribers", output=str(path))
    text = path.read_text(encoding="utf-8-sig")
    assert "'=cmd" in text and "x@example.jp" in text and ",weekly," in text
