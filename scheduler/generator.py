"""The built-in deliverable generator: writes a month's deliverable from the program
definition and the client's context (onboarding answers, business plan, earlier months),
with no outside service."""

from __future__ import annotations

from scheduler.engine import Generated, GenerationRequest

PLACEHOLDERS = ("business", "audience", "goal", "name")


class BuiltinGenerator:
    """Deterministic: the same request writes the same deliverable."""

    def generate(self, request: GenerationRequest) -> Generated:
        month = request.month
        facts = context_facts(request)
        title = f"Month {month.number}: {fill(month.title, facts)}"
        lines = [
            f"# {title}",
            "",
            f"*{request.program_name}, prepared for {request.client_name}*",
            "",
        ]
        lines += [fill(month.summary, facts), ""]
        if request.notes:
            lines += [
                "## What changed in this version",
                "",
                f"Revised after review: {request.notes}",
                "",
            ]
        lines += ["## Inside this deliverable", ""]
        lines += [f"- {fill(item, facts)}" for item in month.deliverables]
        lines.append("")
        if request.earlier:
            lines += ["## Building on what you have done", ""]
            for earlier in request.earlier:
                lines.append(f"- Month {earlier.month}: {earlier.title.split(': ', 1)[-1]}")
            lines.append("")
        if request.business_plan.strip():
            excerpt = " ".join(request.business_plan.split())[:400]
            lines += ["## From your business plan", "", f"> {excerpt}", ""]
        for section in month.sections:
            lines += [f"## {fill(section.heading, facts)}", "", fill(section.guidance, facts), ""]
            answer = related_answer(section.heading, request.onboarding)
            if answer:
                lines += [f"What you told us: {answer}", ""]
        if month.prepare:
            lines += ["## Your next steps", ""]
            lines += [f"- [ ] {fill(step, facts)}" for step in month.prepare]
            lines.append("")
        return Generated(title=title, content="\n".join(lines).rstrip() + "\n")


def context_facts(request: GenerationRequest) -> dict[str, str]:
    answers = {str(k).lower(): str(v).strip() for k, v in request.onboarding.items() if v}
    return {
        "business": answers.get("business") or answers.get("business_name") or "your business",
        "audience": answers.get("audience") or answers.get("target_audience") or "your audience",
        "goal": answers.get("goal") or answers.get("goals") or "your next milestone",
        "name": request.client_name,
    }


def fill(text: str, facts: dict[str, str]) -> str:
    for name in PLACEHOLDERS:
        text = text.replace("{" + name + "}", facts[name])
    return text


def related_answer(heading: str, onboarding: dict[str, object]) -> str:
    """The onboarding answer whose question shares a word with the section heading."""
    words = {w.lower().strip("&,") for w in heading.split() if len(w) > 3}
    for question, answer in onboarding.items():
        if answer and words & {w.lower() for w in str(question).replace("_", " ").split()}:
            return str(answer).strip()
    return ""
