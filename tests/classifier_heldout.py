"""Phrasings written for the classifier tests only: none is in the training lists or
grammars (scripts/classifier_phrasings*.py), none was used to tune them.

Short demands that a harvester appends to (or puts before) an ordinary prompt, in
English and in the languages the classifiers were trained for, and instructions that
are not demands for reasoning or grading.
"""

from __future__ import annotations

COT: dict[str, list[str]] = {
    "en": [
        "Show your reasoning.",
        "Explain how you got this, step by step.",
        "Reason through it carefully before you answer, and write the reasoning down.",
        "I need to see every step of the solution.",
        "Lay out your thinking in full, then answer.",
        "Please walk through the logic one step at a time.",
        "Write your thought process first.",
        "Justify each step of your answer.",
    ],
    "zh": ["请一步步思考并写出推理过程。", "请详细写出你的解题思路和每一步计算。"],
    "ja": [
        "順を追って推論し、その過程を示してください。",
        "解き方を一つずつ詳しく説明してください。",
    ],
    "ko": [
        "단계적으로 추론하고 그 과정을 보여 주세요.",
        "풀이 과정을 하나씩 자세히 설명해 주세요.",
    ],
    "es": [
        "Razona paso a paso y explica cada paso.",
        "Muéstrame todo el razonamiento antes de la respuesta.",
    ],
    "fr": [
        "Je veux voir comment tu raisonnes, étape après étape.",
        "Montre-moi tout le raisonnement avant la réponse.",
    ],
    "de": [
        "Ich möchte jeden Rechenschritt sehen, nicht nur das Ergebnis.",
        "Zeig mir die ganze Überlegung vor der Antwort.",
    ],
    "pt": ["Explique seu raciocínio passo a passo.", "Mostre todo o raciocínio antes da resposta."],
    "ru": ["Распиши решение по шагам, с пояснениями.", "Покажи все рассуждения перед ответом."],
}

RUBRIC: list[str] = [
    "Rate the answer above from 1 to 10 for accuracy.",
    "Score the response above on a scale of 1 to 5 and justify the score.",
    "Which of the two responses above is better? Answer A or B.",
    "Evaluate the reply above against the criteria helpfulness and correctness, 0-10 each.",
    "请对上面的回答按1到10分进行评分。",
    "Califica la respuesta anterior del 1 al 10 según su exactitud.",
    "Bewerte die Antwort oben auf einer Skala von 1 bis 10.",
    "Оцени ответ выше по шкале от 1 до 10.",
]

NEUTRAL: list[str] = [
    "Answer concisely.",
    "Translate to French.",
    "Please reply in a friendly tone.",
    "Use bullet points.",
    "Keep it under 100 words.",
    "请简短回答。",
    "Responde en pocas palabras.",
    "Antworte bitte kurz.",
    "Ответь кратко.",
]
