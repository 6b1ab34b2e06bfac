"""Which part of the quarterly evidence answers which control: one short table for the auditor.

What each control asks is paraphrased from its source (AICPA Trust Services Criteria 2017, A1.3
with its points of focus; ISO 22301:2019, clause 8.5 "Exercise programme", "exercising and
testing" in the 2012 edition; Regulation (EU) 2022/2554, DORA, Articles 11 and 24). The table
states facts about this evidence: which section bears on which requirement, and what it does not
cover. Whether a control is met is for the organisation and its auditor to decide.
"""
from __future__ import annotations

__all__ = ["CONTROLS", "NOTE"]

NOTE = ("Which section of this evidence bears on each control, and what it does not cover. It is not "
        "an opinion on whether a control is met: that is for the organisation and its auditor.")

CONTROLS = (
    {"control": "SOC 2 A1.3 (AICPA Trust Services Criteria, Availability)",
     "asks": "Recovery plan procedures are tested to show that system recovery meets its objectives: periodic "
             "business continuity plan testing from scenarios, plans revised on the results, and tests of the "
             "integrity and completeness of backup data.",
     "answered_by": "BCP success criteria and Scenarios (each run's measured RTO and RPO against the plan's "
                    "objectives); Backup verification (weekly restores with integrity checked); Findings "
                    "(corrective actions recorded against failed runs).",
     "not_covered": "Scenarios in which key personnel are unavailable: the game day tests the automation, not "
                    "the people."},
    {"control": "ISO 22301:2019 clause 8.5 (Exercise programme)",
     "asks": "A programme of exercises and tests that validates the continuity strategies and solutions over "
             "time: planned scenarios with defined objectives, at planned intervals and after significant change, "
             "each followed by a formal report of outcomes and actions, acted upon.",
     "answered_by": "Plans (each game day approved before it ran: scenarios, objectives, window, approver) and "
                    "Plan and results on each game day's index; runs per month (the monthly schedule); this "
                    "report and each game day's index (the post-exercise reports); Findings (actions and retests).",
     "not_covered": "Teamwork, competence and confidence of the people with response roles."},
    {"control": "DORA Article 11 (Response and recovery)",
     "asks": "An ICT business continuity policy with response and recovery plans, tested at least yearly and "
             "after substantive changes to the ICT systems that support critical or important functions, "
             "including the crisis communication plans.",
     "answered_by": "Scenarios and the monthly RTO trend (dated tests of each recovery procedure of the BCP); "
                    "Recovery phases (detect, notify, respond, restore); the notification and response criteria "
                    "(the escalation matrix's notification times, per run).",
     "not_covered": "Whether a change to the systems was substantive, and so called for an extra test."},
    {"control": "DORA Article 24 (Digital operational resilience testing)",
     "asks": "A testing programme, part of the ICT risk-management framework, that assesses preparedness, finds "
             "weaknesses and gets corrective measures implemented promptly: issues prioritised, classified and "
             "remedied, with validation that each is fully addressed; ICT systems supporting critical or "
             "important functions tested at least yearly, by independent testers.",
     "answered_by": "Findings (each failed criterion opened as a finding, its corrective action and owner, closed "
                    "only by a later passing run of the same scenario, named); Plans (who approved); Signatures "
                    "(who signed every run and this manifest).",
     "not_covered": "The testers' independence, and the other test types of Article 25 (e.g. penetration tests)."},
)
