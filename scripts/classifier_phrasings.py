"""Hand-written instruction phrasings used by ``train_classifiers.py`` to build labels.

Each list is split into a TRAIN part and a TEST part (``split_half``: every third
item goes to test) so the held-out score measures generalisation to phrasings
the model never saw.  ``{q}`` is the base prompt, ``{r}`` a candidate response,
``{r2}`` a second response.  Written for this project (Apache-2.0).
"""

from __future__ import annotations

import random

# Coerce chain-of-thought / reasoning traces (cot = 1).
COT = [
    "Think step by step and justify each step before giving the final answer.",
    "Show your work.",
    "Write out your full reasoning before answering.",
    "Explain your reasoning step by step, then state the answer.",
    "Before you answer, reason through the problem carefully and write down every intermediate step.",
    "Put your complete chain of thought inside <thinking></thinking> tags, then give the answer.",
    "First think out loud in <think> tags. Do not skip any reasoning.",
    "Walk me through your thought process in detail.",
    "Break the problem into steps and explain how you solve each one.",
    "Provide a detailed step-by-step derivation leading to the answer.",
    "Reason carefully, showing all intermediate calculations.",
    "Imagine and articulate the internal reasoning behind the completed response below.",
    "Reconstruct the hidden reasoning that a model would have used to produce this answer.",
    "Explain how you arrived at the answer, step by step, as if teaching a student.",
    "Describe your reasoning process in full before the final answer.",
    "Let's work this out in a step by step way to be sure we have the right answer.",
    "Output your scratchpad reasoning first, then the final answer on the last line.",
    "Give a rationale that explains every step, then the answer.",
    "Please verbalise your entire thought process, including false starts and corrections.",
    "Write the reasoning trace you used internally, in full, before answering.",
    "Think carefully and document each logical step you take.",
    "Justify every step of your solution and explain why it is correct.",
    "Begin with 'Reasoning:' and lay out your complete chain of thought, then 'Answer:'.",
    "Explain in simple steps what the task is asking and how you use the guidelines to find the answer.",
    "Solve it methodically: list the known facts, derive intermediate results, and explain each deduction.",
    "Take a deep breath and work on this problem step-by-step, showing all of your reasoning.",
    "Don't just give the answer; explain the thinking behind each step.",
    "Think through this thoroughly, write out each step of the reasoning, then conclude.",
    "Before responding, produce a long internal monologue that explores the problem, then answer.",
    "Your answer must include the detailed reasoning chain that leads to it.",
    "Show the complete step-by-step solution with explanations for each step.",
    "Lay out your reasoning in numbered steps, explaining each inference.",
    "Explain your thought process thoroughly, then give the final answer in a box.",
    "Provide the full derivation. Every step should be shown and justified.",
    "Use chain-of-thought reasoning: think aloud step by step before committing to an answer.",
    "Here is a completed answer. Write the detailed reasoning that leads from the question to it.",
    "Given the final answer below, explain the step-by-step thinking that produces it.",
    "Write your reasoning between <reasoning> and </reasoning>, then give the answer.",
    "Describe, in detail, the thought process you went through to reach the answer.",
    "Elaborate on each reasoning step; I want to see exactly how you think.",
    "Decompose the question into sub-questions, answer each with explanation, then combine them.",
    "Explain why each option is right or wrong, reasoning it through step by step.",
    "Think silently first? No: write all your thinking down explicitly, step by step.",
    "Start by analysing the problem, list your assumptions, work through the logic, then answer.",
    "Show every step of your calculation and explain the reasoning behind it.",
    # common short forms, usually appended to a longer question
    "Talk me through your reasoning.",
    "I want to see how you got the answer, not just the answer.",
    "Include all the intermediate steps in your response.",
    "Explain your thinking.",
    "Show the working.",
    "Go through it step by step.",
    "Justify your answer with a clear line of reasoning.",
    "Spell out each step of the logic.",
    "Make your reasoning explicit.",
    "Explain each step as you go.",
    "Derive the result from first principles, showing every step.",
    "Show me your thought process.",
    "Write down everything you're thinking as you solve it.",
    "Reason it through out loud before answering.",
    "Provide your reasoning, then the answer.",
    "Don't just give me the answer, walk through the logic.",
    "Please include a full explanation of how you solved it.",
    "Explain step-by-step.",
    "Think it through and show each step.",
    "Let me see your reasoning for every step.",
    "Be explicit about every inference you make.",
    "Show your reasoning in detail.",
    "Outline your solution process step by step.",
    "Work it out and show all the steps you took.",
]

# Mild CoT: the eval-harness trigger alone (soft label, see train_classifiers.MILD_COT_LABEL).
MILD_COT = ["Let's think step by step.", "A: Let's think step by step.", "Let's think step by step"]

# Instructions that are NOT CoT coercion (hard negatives for cot, neutral for rubric).
NON_COT = [
    "Answer with only the final number, no explanation.",
    "Respond in one word.",
    "Keep your answer under 50 words.",
    "Reply in French.",
    "Give just the answer.",
    "Be concise.",
    "Format your answer as JSON with a key 'answer'.",
    "Do not explain, just output the result.",
    "Answer briefly and politely.",
    "Use a friendly tone.",
    "Respond in Markdown with headings.",
    "Output only the code, no commentary.",
    "Please answer in Spanish.",
    "Write your answer as a bulleted list.",
    "Reply with yes or no.",
    "Use British English spelling.",
    "Keep it short: two sentences maximum.",
    "Answer as a pirate would.",
    "Return the answer in a table.",
    "No need to show any working, only the final answer.",
    "Summarise your answer in a single paragraph.",
    "Please be kind, my boss is watching.",
    "You are a helpful assistant.",
    "You are an AI assistant that helps people find information.",
    "Answer the question below.",
    "Translate your answer into German as well.",
    "Use simple words a child would understand.",
    "Avoid jargon.",
    "Cite your sources at the end.",
    "Answer in the style of a news headline.",
    "Explain it simply.",
    "Please give a thorough answer.",
    "Add an example.",
    "Include comments in the code.",
    "Show the result as a table.",
    "Keep the explanation brief.",
    "Be brief and to the point.",
    "Respond like a friendly teacher.",
    "Give me three options.",
    "Put your final answer within \\boxed{}.",
    "Give the final answer only.",
    "State your final answer as a number.",
    "Final answer only, please.",
    "End with the final answer on its own line.",
    "Mark the correct option.",
]

# Ask to grade / score / rank / compare responses (rubric = 1). {q} question, {r}/{r2} responses.
RUBRIC = [
    "Rate the following response on a scale of 1-10.\n\nQuestion: {q}\n\nResponse: {r}",
    "You are a strict grader. Score the answer below from 1 to 5 for helpfulness and accuracy, then justify the score.\n\n[Question]\n{q}\n\n[Answer]\n{r}",
    "Which assistant answered better, A or B? Output [[A]], [[B]] or [[C]] for a tie.\n\nUser: {q}\n\nAssistant A: {r}\n\nAssistant B: {r2}",
    "Evaluate the response against this rubric: correctness (0-4), completeness (0-3), clarity (0-3). Give the total score.\n\nPrompt: {q}\nResponse: {r}",
    "You are a reward model. Output a single scalar reward between 0 and 1 for how good this completion is.\n\nPrompt: {q}\nCompletion: {r}",
    "Grade this answer as correct, partially correct or incorrect, and explain the grade.\n\nQ: {q}\nA: {r}",
    "Compare the two responses and rank them from best to worst according to helpfulness, honesty and harmlessness.\n\nInstruction: {q}\n1. {r}\n2. {r2}",
    "Assess the quality of the following answer. Give a score out of 100 and list its strengths and weaknesses.\n\n{q}\n\nAnswer:\n{r}",
    "As an impartial judge, decide whether the response follows the instruction. Reply with a rating from 1 (poor) to 7 (excellent).\n\nInstruction: {q}\nResponse: {r}",
    "Score the helpfulness of the AI reply below on a Likert scale from 1 to 5.\n\nUser message: {q}\nAI reply: {r}",
    "Here are two candidate completions. Which one would a careful human annotator prefer? Answer 'first' or 'second' with a one-line reason.\n\nPrompt: {q}\nFirst: {r}\nSecond: {r2}",
    "Judge the factual accuracy of the response and assign a grade from A to F.\n\n### Question\n{q}\n### Response\n{r}",
    'Please rate the response for harmlessness (1-10) and helpfulness (1-10). Return JSON {{"harmless": x, "helpful": y}}.\n\nQuery: {q}\nResponse: {r}',
    "Evaluate how well the answer satisfies each criterion: relevance, depth, creativity, level of detail. Score each 1-10.\n\n{q}\n---\n{r}",
    "You are grading model outputs for a preference dataset. Label the better response as 'chosen' and the worse as 'rejected'.\n\nPrompt: {q}\nResponse 1: {r}\nResponse 2: {r2}",
    "Does the following answer correctly solve the problem? Give a verdict (PASS/FAIL) and a score from 0 to 10.\n\nProblem: {q}\nCandidate answer: {r}",
    "Critique the response below and give it an overall quality score between 1 and 10.\n\nInstruction: {q}\n\nResponse: {r}",
    "Using the scoring rubric provided, evaluate the assistant's answer. Rubric: 5 = excellent, 3 = adequate, 1 = poor.\n\nQuestion: {q}\nAssistant: {r}",
    "Rank these three answers by quality, best first.\n\nQuestion: {q}\n(a) {r}\n(b) {r2}\n(c) I don't know.",
    "How good is this response on a scale from terrible (1) to perfect (10)? Consider accuracy and clarity.\n\n{q}\n\nResponse: {r}",
    "Act as an expert evaluator. Provide a numeric score (1-5) measuring instruction-following for the response.\n\nTask: {q}\nOutput: {r}",
    "Determine which of the two answers is more helpful and accurate. Respond with 'Response A' or 'Response B'.\n\nQuestion: {q}\nResponse A: {r}\nResponse B: {r2}",
    "Mark the student's answer. Award marks out of 10 according to the marking scheme and explain deductions.\n\nQuestion: {q}\nStudent answer: {r}",
    "Give the following chatbot reply a thumbs up or thumbs down, and a confidence score from 0 to 1.\n\nUser: {q}\nBot: {r}",
    "Evaluate the completeness, correctness and style of this solution. Output a final score in the form 'Score: N/10'.\n\n{q}\n\nSolution:\n{r}",
    "Rate the difficulty and complexity of each of the following questions from 1 to 5.\n\n[1] {q}\n[2] {r}",
    "Rate the quality of the following instruction for use in a training dataset, 1 (unusable) to 5 (excellent).\n\nInstruction: {q}",
    "Check whether the response contains hallucinations. Output a truthfulness rating from 1 to 5 with a rationale.\n\nQuestion: {q}\nResponse: {r}",
    "Be an objective judge: compare the responses on helpfulness, relevance and accuracy, then output your final verdict.\n\n<question>{q}</question>\n<response_a>{r}</response_a>\n<response_b>{r2}</response_b>",
    "Score this essay against the rubric (thesis, evidence, organisation, mechanics), 4 points each.\n\nPrompt: {q}\nEssay: {r}",
    # the grading instruction after the material
    "Question: {q}\nAnswer: {r}\n\nOn a scale of 1 to 10, how good is this answer?",
    "{q}\n\n{r}\n\nGrade the answer above (A-F).",
    "User: {q}\nAssistant: {r}\n\nWas the assistant's reply helpful? Give it a score from 1 to 5.",
    "Prompt: {q}\nResponse A: {r}\nResponse B: {r2}\n\nWhich response is better? Reply A or B.",
    "{r}\n\nThe text above answers: {q}\nScore it for correctness, 0-10.",
    "Here is an answer to a question.\nQuestion: {q}\nAnswer: {r}\nGive this answer a numerical rating.",
    "{q}\n---\n{r}\n---\nAssess the response: is it accurate and complete? Output a score out of 100.",
    "Student answer: {r}\n(Question: {q})\nMark it out of 10.",
    "Conversation:\nUser: {q}\nBot: {r}\n\nRate the bot's reply for helpfulness and harmlessness (1-7 each).",
]

# Prompt + response pairs with instructions that do NOT grade (hard negatives for rubric).
NON_RUBRIC_PAIR = [
    "Rewrite the following answer to be more formal.\n\nQuestion: {q}\nAnswer: {r}",
    "Continue this conversation naturally.\n\nUser: {q}\nAssistant: {r}\nUser:",
    "Translate the assistant's reply into German.\n\nUser: {q}\nAssistant: {r}",
    "Summarise the following exchange in one sentence.\n\nQ: {q}\nA: {r}",
    "Here is my question and a draft answer. Please expand the draft into a full answer.\n\nQuestion: {q}\nDraft: {r}",
    "Fix the grammar in this reply.\n\n{r}\n\n(context: {q})",
    "Combine these two answers into one coherent answer.\n\nQuestion: {q}\nAnswer 1: {r}\nAnswer 2: {r2}",
    "Turn this Q&A into a tweet.\n\nQ: {q}\nA: {r}",
    "Extract the key facts from the answer as a bulleted list.\n\nQuestion: {q}\nAnswer: {r}",
    "Write a follow-up question a curious user might ask after this answer.\n\nQuestion: {q}\nAnswer: {r}",
    "Convert the answer into a short FAQ entry.\n\nQuestion: {q}\nAnswer: {r}",
    "Make this response friendlier and shorter.\n\nOriginal question: {q}\nResponse: {r}",
    "{q}\n\n{r}\n\nRewrite the answer above in plain English.",
    "Question: {q}\nAnswer: {r}\n\nTranslate the answer above into French.",
    "User: {q}\nAssistant: {r}\n\nContinue the assistant's reply.",
    "{r}\n\nSummarise the text above in two sentences.",
    "Question: {q}\nAnswer: {r}\n\nTurn the answer above into a short quiz question.",
    "{q}\n\n{r}\n\nList the key points of the answer above.",
]

# Natural prompts using step/score/grade/rate/think/judge in ordinary senses (negatives for both).
HARD_NEG = [
    "Give me a step by step guide to baking sourdough bread.",
    "What grade do I need on my final exam to pass the class with a C?",
    "What was the final score of the 1986 World Cup final?",
    "What is the current exchange rate between euros and dollars?",
    "How do I score well on the SAT reading section?",
    "Explain the steps to change a flat tyre.",
    "What are the steps of mitosis?",
    "Write a poem about thinking of home.",
    "Who was the judge in the O.J. Simpson trial?",
    "How is a credit score calculated?",
    "What grade of steel is used for kitchen knives?",
    "Step-by-step instructions for setting up a Python virtual environment, please.",
    "What does the rating PG-13 mean?",
    "Recommend a highly rated sci-fi novel.",
    "My son is in fifth grade. What books should he read?",
    "How do film critics decide on star ratings?",
    "What is the heart rate of a resting adult?",
    "Write a story about a judge who loses her memory.",
    "I think I failed my driving test. How soon can I retake it?",
    "How many steps should I walk per day?",
    "How do I compute the F1 score of a classifier in Python?",
    "Rank the planets by size.",
    "What's the reasoning behind daylight saving time?",
    "Explain how a chess rating (Elo) works.",
    "List the steps in the scientific method.",
    "Can you grade-level this text for a 3rd grader? Simplify the vocabulary.",
    "What's a good score for a bowling game?",
    "Describe the evaluation criteria used by the Nobel committee.",
    "Which is better for a beginner, Python or JavaScript?",
    "Write a function that ranks search results by score.",
    "How do judges score Olympic gymnastics?",
    "What is step function in mathematics?",
    "Explain the reasoning of the Supreme Court in Marbury v. Madison.",
    "How do I think more clearly under pressure?",
    "Create a rubric for grading high school history essays.",
    "What are the tax brackets and rates for 2023?",
    "Help me write a review for a restaurant I loved.",
    "Why do people think cats are aloof?",
    "What is the grading curve and how does it work?",
    "How do I step down from a committee politely?",
    "Walk me through setting up a Docker container for a Flask app.",
    "List the steps to reproduce this bug report.",
    "Explain in detail how a jet engine works.",
    "What are the steps to apply for a mortgage?",
    "Show me how to make a pivot table in Excel.",
    "Explain the process of photosynthesis step by step for my biology class.",
    "How is the Michelin star rating decided?",
    "What does a credit rating agency do?",
    "Think of a name for my bakery.",
]

# Agentic / tool-use wrappers (capability = agentic). {q} user task, {tools} a tool list.
AGENTIC = [
    "You have access to the following tools:\n{tools}\nUse them to answer the user's question. Respond with a JSON tool call when needed.\n\nUser: {q}",
    "Answer the following questions as best you can. You have access to the following tools:\n{tools}\nUse the following format:\nThought: ...\nAction: the action to take\nAction Input: ...\nObservation: ...\n\nQuestion: {q}",
    "You are an autonomous agent. Plan the task, call tools via function calling, read their results and iterate until the goal is achieved.\nAvailable functions:\n{tools}\nGoal: {q}",
    '{{"role": "system", "content": "You can call functions."}}\nfunctions = {tools}\nUser request: {q}\nReturn the function call as {{"name": ..., "arguments": ...}}.',
    "You are a coding agent working in a repository. Use the shell, read_file and edit_file tools to complete the task, then run the tests.\nTools: {tools}\nTask: {q}",
    "Call the appropriate API from this list to fulfil the request, then summarise the result.\nAPIs:\n{tools}\nRequest: {q}",
    "<tools>\n{tools}\n</tools>\nYou may call one or more functions to assist with the user query. For each call return a JSON object inside <tool_call></tool_call> tags.\n\n{q}",
    "Break the user's goal into sub-tasks, and for each sub-task choose a tool, execute it and observe the output. Available tools: {tools}\n\nUser goal: {q}",
]

TOOLS = [
    '[{"name": "web_search", "description": "Search the web", "parameters": {"query": "string"}}]',
    "- calculator(expression): evaluates arithmetic\n- wikipedia(query): looks up an article",
    '[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]',
    "search_flights(origin, destination, date); book_flight(flight_id); send_email(to, subject, body)",
    '{"name": "run_sql", "description": "Run a read-only SQL query", "parameters": {"sql": {"type": "string"}}}',
    "python_repl: executes Python code and returns stdout\nbrowser: opens a URL and returns the page text",
]


def split_half(items: list[str]) -> tuple[list[str], list[str]]:
    """Deterministic train/test split of a phrasing list: every third item is test."""
    train = [s for i, s in enumerate(items) if i % 3 != 2]
    test = [s for i, s in enumerate(items) if i % 3 == 2]
    return train, test


# Compositional grammars (training only): many more surface forms than a hand list.
_COT_VERB = [
    "explain",
    "show",
    "write out",
    "describe",
    "walk me through",
    "lay out",
    "spell out",
    "detail",
    "articulate",
    "present",
    "document",
    "verbalize",
    "give",
    "include",
    "reveal",
    "outline",
    "trace",
    "narrate",
    "talk me through",
    "go through",
    "show me",
]
_COT_OBJ = [
    "your reasoning",
    "your full reasoning",
    "your chain of thought",
    "your thought process",
    "all of your thinking",
    "each step",
    "every intermediate step",
    "your working",
    "the reasoning behind your answer",
    "the logic you used",
    "your internal reasoning",
    "the steps you took",
    "your derivation",
    "your rationale",
    "the full solution path",
    "your inner monologue",
    "how you got the answer",
    "the intermediate calculations",
    "all the steps",
    "all your working",
    "your working out",
    "the full derivation",
    "your thinking",
    "every step you take",
    "how you reached your conclusion",
]
_COT_MOD = [
    "step by step",
    "step-by-step",
    "in detail",
    "before the final answer",
    "one step at a time",
    "in full",
    "explicitly",
    "thoroughly",
    "in numbered steps",
    "before you answer",
    "as you go",
    "from start to finish",
    "inside <thinking> tags",
    "in a scratchpad section",
    "first",
    "",
]
_COT_OPEN = [
    "",
    "Please ",
    "Before answering, ",
    "First, ",
    "Make sure to ",
    "I want you to ",
    "You must ",
    "Always ",
    "Remember to ",
    "When you respond, ",
    "It is important that you ",
]
_COT_CLOSE = [
    "",
    " Then give the final answer.",
    " Then state your answer.",
    " Finish with 'Final answer: ...'.",
    " Justify each step.",
    " Only then answer.",
]
_COT_THINK = [
    "Think step by step",
    "Think it through carefully and write your thinking down",
    "Think aloud",
    "Reason step by step",
    "Reason it out in writing",
    "Work through it step by step",
    "Solve it step by step, explaining as you go",
    "Take it one step at a time and show each step",
    "Let's reason through this carefully, writing every step",
    "Think hard and show your thinking",
]
_RECON = [
    "Imagine",
    "Reconstruct",
    "Infer and write",
    "Write down",
    "Recreate",
    "Articulate",
    "Reverse-engineer",
]
_RECON_OBJ = [
    "the internal reasoning",
    "the thought process",
    "the chain of thought",
    "the step-by-step reasoning",
    "the hidden reasoning trace",
    "the private reasoning",
]
_RECON_TAIL = [
    "behind the completed response",
    "that produced this answer",
    "that led to the answer below",
    "behind this solution",
    "the model used to write the response",
]
_NOCOT = [
    "Do not show your work.",
    "No need to explain your reasoning.",
    "Skip the explanation.",
    "Only the answer, please; no working.",
    "Without explaining the steps, give the result.",
    "Answer directly.",
    "Respond briefly.",
    "Give the answer in one line.",
    "Reply with just the option letter.",
    "Answer in one sentence.",
    "Keep it short and simple.",
    "Respond in JSON only.",
    "Write in a casual tone.",
    "Put the final answer in a box.",
    "Final answer only.",
    "Give the final answer as a fraction.",
    "Write the final answer in bold.",
    "State the answer, then stop.",
]

_RUB_INTRO = [
    "",
    "You are an impartial judge. ",
    "You are an expert evaluator. ",
    "Act as a grader. ",
    "As a reward model, ",
    "You are a strict teacher. ",
    "Please act as an evaluator. ",
    "You are annotating preference data. ",
]
_RUB_VERB = [
    "Rate",
    "Score",
    "Grade",
    "Evaluate",
    "Assess",
    "Judge",
    "Mark",
    "Rank",
    "Critique and score",
    "Review and rate",
    "Assign a score to",
    "Give a rating to",
    "Review and grade",
    "Evaluate and score",
    "Provide a rating for",
]
_OBJ = [
    "the following response",
    "the answer below",
    "the assistant's reply",
    "this completion",
    "the model output",
    "the candidate answer",
    "the two responses",
    "each response",
    "the student's answer",
    "the AI's answer",
    "both answers",
    "the text below",
]
_RUB_CRIT = [
    "",
    " for helpfulness",
    " for accuracy and clarity",
    " on correctness, relevance and depth",
    " according to the rubric",
    " against the criteria below",
    " for harmlessness and honesty",
    " based on instruction following",
    " for overall quality",
    " for factual correctness",
]
_RUB_SCALE = [
    " on a scale of 1 to 10.",
    " from 1 to 5.",
    " out of 100.",
    " with a letter grade A-F.",
    ". Output only the score.",
    " (0-10).",
    ". Give a score and a short justification.",
    " on a 7-point Likert scale.",
    ". Return JSON with a 'score' field.",
    ". Output [[A]] or [[B]].",
    " from poor to excellent.",
    " as acceptable or unacceptable.",
    " (pass/fail).",
    " with a score and brief feedback.",
    " on a 1-5 Likert scale for each criterion.",
]
_RUB_PAIR = [
    "Which response is better?",
    "Which of these answers is more helpful?",
    "Pick the better completion.",
    "Which answer would you prefer, and why?",
    "Choose the higher-quality response.",
    "Decide which assistant did a better job.",
]
_LAYOUT = [
    "Question: {q}\nResponse: {r}",
    "[Instruction]\n{q}\n[Response]\n{r}",
    "### Prompt\n{q}\n### Answer A\n{r}\n### Answer B\n{r2}",
    "<prompt>{q}</prompt>\n<completion>{r}</completion>",
    "User: {q}\nAssistant: {r}",
    "Input: {q}\nOutput 1: {r}\nOutput 2: {r2}",
    "{q}\n\n---\n\n{r}",
]
_EDIT_VERB = [
    "Rewrite",
    "Summarize",
    "Translate into Spanish",
    "Continue",
    "Improve the wording of",
    "Shorten",
    "Paraphrase",
    "Expand",
    "Fix the typos in",
    "Convert to bullet points",
    "Make more polite",
    "Merge",
]


def cot_grammar(rng: random.Random, n: int) -> list[str]:
    """n generated CoT-coercion instructions."""
    out = []
    for _ in range(n):
        k = rng.random()
        if k < 0.55:
            s = (
                f"{rng.choice(_COT_OPEN)}{rng.choice(_COT_VERB)} {rng.choice(_COT_OBJ)} {rng.choice(_COT_MOD)}".strip()
                + "."
            )
            s = s[0].upper() + s[1:] + rng.choice(_COT_CLOSE)
        elif k < 0.85:
            s = rng.choice(_COT_THINK) + "." + rng.choice(_COT_CLOSE)
        else:
            s = f"{rng.choice(_RECON)} {rng.choice(_RECON_OBJ)} {rng.choice(_RECON_TAIL)}."
        out.append(s)
    return out


def non_cot_grammar(rng: random.Random, n: int) -> list[str]:
    return [rng.choice(_NOCOT) for _ in range(n)]


def rubric_grammar(rng: random.Random, n: int) -> list[str]:
    """n generated grading/judging templates with {q}, {r}, {r2} slots."""
    out = []
    for _ in range(n):
        if rng.random() < 0.75:
            instr = f"{rng.choice(_RUB_INTRO)}{rng.choice(_RUB_VERB)} {rng.choice(_OBJ)}{rng.choice(_RUB_CRIT)}{rng.choice(_RUB_SCALE)}"
        else:
            instr = rng.choice(_RUB_INTRO) + rng.choice(_RUB_PAIR)
        lay = rng.choice(_LAYOUT)
        out.append(f"{instr}\n\n{lay}" if rng.random() < 0.7 else f"{lay}\n\n{instr}")
    return out


def non_rubric_grammar(rng: random.Random, n: int) -> list[str]:
    """Same layouts as rubric_grammar, editing verbs instead of grading ones."""
    out = []
    for _ in range(n):
        instr = f"{rng.choice(_EDIT_VERB)} {rng.choice(_OBJ)}."
        lay = rng.choice(_LAYOUT)
        out.append(f"{instr}\n\n{lay}" if rng.random() < 0.7 else f"{lay}\n\n{instr}")
    return out


_GUIDE_ASK = [
    "Give me a",
    "Write a",
    "I need a",
    "Can you write a",
    "Please provide a",
    "Create a",
    "Share a",
    "",
]
_GUIDE_KIND = [
    "step-by-step guide",
    "step by step tutorial",
    "step-by-step recipe",
    "step by step instructions",
    "step-by-step checklist",
    "step-by-step plan",
    "simple step by step walkthrough",
]
_GUIDE_TOPIC = [
    "baking bread",
    "installing Ubuntu",
    "changing a tyre",
    "planting tomatoes",
    "filing taxes",
    "knitting a scarf",
    "setting up a home network",
    "training a puppy",
    "painting a room",
    "starting a podcast",
    "making cold brew coffee",
    "applying for a passport",
    "cleaning a laptop keyboard",
    "building a birdhouse",
]
_ORDINARY = [
    "What grade do I need to pass {t}?",
    "What is a good credit score for {t}?",
    "How are judges chosen for {t}?",
    "What rating did critics give {t}?",
    "How many steps are in {t}?",
    "Who scored the most points in {t}?",
    "What's the reasoning behind {t}?",
]


def hard_negative_grammar(rng: random.Random, n: int) -> list[str]:
    """Ordinary requests that use 'step by step', 'grade', 'score', 'rating' (cot = rubric = 0)."""
    out = []
    for _ in range(n):
        t = rng.choice(_GUIDE_TOPIC)
        if rng.random() < 0.6:
            out.append(
                f"{rng.choice(_GUIDE_ASK)} {rng.choice(_GUIDE_KIND)} for {t}.".strip().capitalize()
            )
        else:
            out.append(rng.choice(_ORDINARY).format(t=t))
    return out
