"""The fixed words of a statement letter and of the delivery e-mail, per language.

A reviewed dictionary per language (en, de, fr), not gettext: the letter has a few dozen
fixed phrases, and a dict keeps every translation next to its English original where a
reviewer sees them side by side. The plan's own words (step, input and parameter labels and
notes) are the plan author's and are printed as written. `words(tag)` picks the catalog by
the locale's language (`de-DE`, `de-AT` -> de; en-GB and en-US share the English words,
spelt as the rest of Paysheet spells them).
Every catalog has exactly the keys of the English one (tested), so a missing translation
fails a test rather than showing a blank on a letter.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType

EN: dict[str, str] = {
    "title": "Bonus statement",
    "draft": "DRAFT",
    "greeting": "Dear colleague,",
    "intro": "this letter sets out your bonus under the {plan} and how it was reached. "
             "Amounts are in {currency}.",
    "plan_line": "{plan} · version {version} · {period}",
    "period_open": "from {start}",
    "headline": "Your bonus",
    "paid_now": "Paid now",
    "deferred": "Deferred",
    "employee": "Employee",
    "fund": "Fund",
    "scenario": "Scenario",
    "period": "Period",
    "status": "Status",
    "how": "How your bonus was reached",
    "inputs": "Your figures",
    "terms": "Plan terms",
    "not_applicable": "does not apply to you",
    "deferral": "Deferred part and its schedule",
    "deferral_amount": "{amount} of your bonus is deferred.",
    "deferral_rules": "It vests under the plan's deferral rules.",
    "deferral_tranches": "It vests in {count} yearly instalments:",
    "deferral_one": "It vests in one instalment:",
    "vests_on": "Vests on {date}",
    "award_date": "Awarded on {date}.",
    "units_part": "{share} of each instalment is paid in units of fund {fund}, bought at its "
                  "price on the award date; the rest in cash.",
    "retention": "Vested units are held for {months} more months before they are released.",
    "held_until": "held until {date}",
    "leaver_keep": "If you leave as a good leaver, your schedule continues.",
    "leaver_forfeit": "If you leave as a good leaver, instalments not yet vested lapse.",
    "bad_leaver_keep": "Otherwise your schedule continues.",
    "bad_leaver_forfeit": "Otherwise instalments not yet vested lapse.",
    "malus": "Deferred amounts can be reduced (malus) or reclaimed (clawback) as the plan "
             "rules allow.",
    "approvals": "Approved by",
    "no_approvals": "Not yet approved.",
    "manager_approved": "Manager approval",
    "hr_approved": "HR approval",
    "finance_approved": "Finance approval",
    "finalized": "Finalized",
    "rejected": "Sent back",
    "state_draft": "Draft, awaiting manager approval",
    "state_manager_approved": "Manager approved, awaiting HR",
    "state_hr_approved": "HR approved, awaiting finance",
    "state_finance_approved": "Finance approved, awaiting finalisation",
    "state_finalized": "Finalized",
    "plan": "Plan",
    "plan_hash": "Plan hash",
    "run": "Run",
    "results_hash": "Results hash",
    "appendix": "Appendix for auditors: the full calculation",
    "appendix_intro": "Every step of the plan in calculation order, with its expression, "
                      "guard and exact value.",
    "col_step": "Step",
    "col_expression": "Expression and guard",
    "col_value": "Exact value",
    "only_when": "only when",
    "default_used": "(default used)",
    "page": "Page",
    "of": "of",
    "yes": "yes",
    "no": "no",
    "mail_subject": "{tenant}: bonus statements of your team ({plan})",
    "mail_attached": "Dear {name},\n\nattached are the bonus statements of the {count} "
                     "employee(s) in your team(s) under the {plan}.\n\n{tenant}\n",
    "mail_link": "Dear {name},\n\nthe bonus statements of the {count} employee(s) in your "
                 "team(s) under the {plan} are ready. Download them, signed in to Paysheet, "
                 "until {expires}:\n\n{url}\n\nThe link is yours alone and expires on that "
                 "date.\n\n{tenant}\n",
}

DE: dict[str, str] = {
    "title": "Bonusmitteilung",
    "draft": "ENTWURF",
    "greeting": "Liebe Kollegin, lieber Kollege,",
    "intro": "dieses Schreiben nennt Ihren Bonus nach dem {plan} und wie er zustande kam. "
             "Beträge in {currency}.",
    "plan_line": "{plan} · Version {version} · {period}",
    "period_open": "ab {start}",
    "headline": "Ihr Bonus",
    "paid_now": "Jetzt ausgezahlt",
    "deferred": "Aufgeschoben",
    "employee": "Mitarbeiter",
    "fund": "Fonds",
    "scenario": "Szenario",
    "period": "Zeitraum",
    "status": "Status",
    "how": "So wurde Ihr Bonus ermittelt",
    "inputs": "Ihre Werte",
    "terms": "Planbedingungen",
    "not_applicable": "trifft auf Sie nicht zu",
    "deferral": "Aufgeschobener Teil und Zeitplan",
    "deferral_amount": "{amount} Ihres Bonus werden aufgeschoben.",
    "deferral_rules": "Er wird nach den Aufschubregeln des Plans unverfallbar.",
    "deferral_tranches": "Er wird in {count} jährlichen Raten unverfallbar:",
    "deferral_one": "Er wird in einer Rate unverfallbar:",
    "vests_on": "Unverfallbar am {date}",
    "award_date": "Zugeteilt am {date}.",
    "units_part": "{share} jeder Rate werden in Anteilen des Fonds {fund} zum Preis am "
                  "Zuteilungstag gewährt, der Rest in bar.",
    "retention": "Unverfallbare Anteile werden weitere {months} Monate gehalten, bevor sie "
                 "freigegeben werden.",
    "held_until": "gehalten bis {date}",
    "leaver_keep": "Scheiden Sie als Good Leaver aus, läuft Ihr Zeitplan weiter.",
    "leaver_forfeit": "Scheiden Sie als Good Leaver aus, verfallen noch nicht unverfallbare "
                      "Raten.",
    "bad_leaver_keep": "Andernfalls läuft Ihr Zeitplan weiter.",
    "bad_leaver_forfeit": "Andernfalls verfallen noch nicht unverfallbare Raten.",
    "malus": "Aufgeschobene Beträge können nach den Planregeln gekürzt (Malus) oder "
             "zurückgefordert (Clawback) werden.",
    "approvals": "Genehmigt von",
    "no_approvals": "Noch nicht genehmigt.",
    "manager_approved": "Genehmigung Vorgesetzte(r)",
    "hr_approved": "Genehmigung HR",
    "finance_approved": "Genehmigung Finanzen",
    "finalized": "Abgeschlossen",
    "rejected": "Zurückgewiesen",
    "state_draft": "Entwurf, wartet auf Genehmigung der Vorgesetzten",
    "state_manager_approved": "Von Vorgesetzten genehmigt, wartet auf HR",
    "state_hr_approved": "Von HR genehmigt, wartet auf Finanzen",
    "state_finance_approved": "Von Finanzen genehmigt, wartet auf Abschluss",
    "state_finalized": "Abgeschlossen",
    "plan": "Plan",
    "plan_hash": "Plan-Hash",
    "run": "Lauf",
    "results_hash": "Ergebnis-Hash",
    "appendix": "Anhang für Prüfer: die vollständige Berechnung",
    "appendix_intro": "Jeder Schritt des Plans in Rechenreihenfolge, mit Ausdruck, Bedingung "
                      "und exaktem Wert.",
    "col_step": "Schritt",
    "col_expression": "Ausdruck und Bedingung",
    "col_value": "Exakter Wert",
    "only_when": "nur wenn",
    "default_used": "(Standardwert)",
    "page": "Seite",
    "of": "von",
    "yes": "ja",
    "no": "nein",
    "mail_subject": "{tenant}: Bonusmitteilungen Ihres Teams ({plan})",
    "mail_attached": "Guten Tag {name},\n\nanbei die Bonusmitteilungen der {count} "
                     "Mitarbeiter Ihrer Teams nach dem {plan}.\n\n{tenant}\n",
    "mail_link": "Guten Tag {name},\n\ndie Bonusmitteilungen der {count} Mitarbeiter Ihrer "
                 "Teams nach dem {plan} liegen bereit. Laden Sie sie, bei Paysheet angemeldet, "
                 "bis {expires} herunter:\n\n{url}\n\nDer Link gilt nur für Sie und läuft an "
                 "diesem Tag ab.\n\n{tenant}\n",
}

FR: dict[str, str] = {
    "title": "Relevé de prime",
    "draft": "BROUILLON",
    "greeting": "Chère collègue, cher collègue,",
    "intro": "ce courrier présente votre prime au titre du {plan} et la façon dont elle a été "
             "calculée. Montants en {currency}.",
    "plan_line": "{plan} · version {version} · {period}",
    "period_open": "à partir du {start}",
    "headline": "Votre prime",
    "paid_now": "Versé maintenant",
    "deferred": "Différé",
    "employee": "Salarié",
    "fund": "Fonds",
    "scenario": "Scénario",
    "period": "Période",
    "status": "Statut",
    "how": "Comment votre prime a été calculée",
    "inputs": "Vos données",
    "terms": "Conditions du plan",
    "not_applicable": "ne vous concerne pas",
    "deferral": "Part différée et son calendrier",
    "deferral_amount": "{amount} de votre prime sont différés.",
    "deferral_rules": "Elle est acquise selon les règles de différé du plan.",
    "deferral_tranches": "Elle est acquise en {count} tranches annuelles :",
    "deferral_one": "Elle est acquise en une tranche :",
    "vests_on": "Acquis le {date}",
    "award_date": "Attribuée le {date}.",
    "units_part": "{share} de chaque tranche sont versés en parts du fonds {fund}, achetées au "
                  "prix du jour d\u2019attribution ; le reste en numéraire.",
    "retention": "Les parts acquises sont conservées {months} mois de plus avant d\u2019être "
                 "libérées.",
    "held_until": "conservé jusqu\u2019au {date}",
    "leaver_keep": "En cas de départ en « good leaver », votre calendrier se poursuit.",
    "leaver_forfeit": "En cas de départ en « good leaver », les tranches non acquises sont "
                      "perdues.",
    "bad_leaver_keep": "Sinon, votre calendrier se poursuit.",
    "bad_leaver_forfeit": "Sinon, les tranches non acquises sont perdues.",
    "malus": "Les montants différés peuvent être réduits (malus) ou restitués (clawback) "
             "selon les règles du plan.",
    "approvals": "Approuvé par",
    "no_approvals": "Pas encore approuvé.",
    "manager_approved": "Approbation du manager",
    "hr_approved": "Approbation RH",
    "finance_approved": "Approbation finance",
    "finalized": "Finalisé",
    "rejected": "Renvoyé",
    "state_draft": "Brouillon, en attente du manager",
    "state_manager_approved": "Approuvé par le manager, en attente des RH",
    "state_hr_approved": "Approuvé par les RH, en attente de la finance",
    "state_finance_approved": "Approuvé par la finance, en attente de finalisation",
    "state_finalized": "Finalisé",
    "plan": "Plan",
    "plan_hash": "Empreinte du plan",
    "run": "Calcul",
    "results_hash": "Empreinte des résultats",
    "appendix": "Annexe pour les auditeurs : le calcul complet",
    "appendix_intro": "Chaque étape du plan dans l\u2019ordre du calcul, avec son expression, sa "
                      "condition et sa valeur exacte.",
    "col_step": "Étape",
    "col_expression": "Expression et condition",
    "col_value": "Valeur exacte",
    "only_when": "seulement si",
    "default_used": "(valeur par défaut)",
    "page": "Page",
    "of": "sur",
    "yes": "oui",
    "no": "non",
    "mail_subject": "{tenant} : relevés de prime de votre équipe ({plan})",
    "mail_attached": "Bonjour {name},\n\nvous trouverez ci-joint les relevés de prime des "
                     "{count} salarié(s) de vos équipes au titre du {plan}.\n\n{tenant}\n",
    "mail_link": "Bonjour {name},\n\nles relevés de prime des {count} salarié(s) de vos "
                 "équipes au titre du {plan} sont prêts. Téléchargez-les, connecté à Paysheet, "
                 "jusqu\u2019au {expires} :\n\n{url}\n\nCe lien n\u2019est valable que pour "
                 "vous et expire à cette date.\n\n{tenant}\n",
}

CATALOGS: Mapping[str, Mapping[str, str]] = MappingProxyType({
    "en": MappingProxyType(EN),
    "de": MappingProxyType(DE), "fr": MappingProxyType(FR),
})


@lru_cache(maxsize=64)
def words(tag: str | None) -> Mapping[str, str]:
    """The catalog for a locale tag (`de-DE`, `fr_FR`, `en-US`): its language's, else
    English."""
    language = (tag or "en").replace("-", "_").split("_")[0].lower()
    return CATALOGS.get(language) or CATALOGS["en"]
