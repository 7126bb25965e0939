"""The program definition is data, validated with clear messages."""

import pytest

from scheduler.program import DEFAULT_PROGRAM, ProgramError, load_program


def test_default_program_has_eight_months():
    program = load_program()
    assert program.length == 8
    assert program.month(4).title == "Sales Engine"
    assert program.schedule.retry_delay_minutes == 15
    assert program.schedule.max_retries == 3


def write(tmp_path, text):
    path = tmp_path / "program.toml"
    path.write_text(text)
    return path


def test_an_operator_can_change_titles_and_offsets(tmp_path):
    text = DEFAULT_PROGRAM.read_text().replace('title = "Brand Identity"', 'title = "Your Brand"')
    text = text.replace("escalation_days_after = 7", "escalation_days_after = 10")
    program = load_program(write(tmp_path, text))
    assert program.month(2).title == "Your Brand"
    assert program.schedule.escalation_days_after == 10


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "name = 'x'\n[schedule]\nmonth_lenght_days = 30\n[[months]]\ntitle='a'\nsummary='b'",
            "month_lenght_days: unknown setting",
        ),
        (
            "name = 'x'\n[schedule]\nmax_retries = -1\n[[months]]\ntitle='a'\nsummary='b'",
            "max_retries: must be a whole number",
        ),
        ("name = 'x'\n[[months]]\nsummary='b'", "months[1].title: a non-empty text is required"),
        ("name = 'x'\nmonths = []", "at least one"),
        ("[[months]]\ntitle='a'\nsummary='b'", "name: a non-empty text is required"),
        (
            "name = 'x'\n[schedule]\nhalfway_month = 9\n[[months]]\ntitle='a'\nsummary='b'",
            "halfway_month",
        ),
        ("name = ", "not valid TOML"),
    ],
)
def test_bad_program_files_say_what_is_wrong(tmp_path, text, message):
    with pytest.raises(ProgramError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_program(write(tmp_path, text))


def test_missing_file(tmp_path):
    with pytest.raises(ProgramError, match="no such program file"):
        load_program(tmp_path / "nope.toml")
