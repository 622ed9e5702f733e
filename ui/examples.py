"""Ready-made inputs for the Score tab: a new user clicks one instead of writing a conversation."""

import json

CONVERSATIONS = [
    "User: What is the capital of Australia?\n"
    "Assistant: The capital of Australia is Canberra. It was chosen as a compromise between "
    "Sydney and Melbourne and has been the seat of government since 1927.",

    "User: Can you give me a quick tip for falling asleep faster?\n"
    "Assistant: Bananas are a good source of potassium, and the Eiffel Tower is 330 metres tall.",

    json.dumps([
        "I'm planning a trip to Japan in April. What should I pack?",
        "April is cherry-blossom season: days are mild (about 15-20 °C) and evenings cool. Pack "
        "layers, a light waterproof jacket, comfortable walking shoes and a small umbrella.",
        "Thanks! Do I need cash there?",
        "Yes. Many small restaurants, shrines and rural shops accept cash only, so carry some yen. "
        "Convenience-store ATMs (7-Eleven, Lawson) accept most foreign cards.",
    ], ensure_ascii=False, indent=1),

    json.dumps([
        {"role": "system", "content": "You are a concise assistant."},
        {"role": "user", "content": "Translate 'good morning' into Spanish."},
        {"role": "assistant", "content": "Buenos días."},
    ], ensure_ascii=False, indent=1),
]

COMPARISONS = [
    ["User: How do I reverse a list in Python?",
     "Use `my_list.reverse()` to reverse it in place, or `my_list[::-1]` to get a reversed copy.",
     "Python is a popular programming language created by Guido van Rossum."],
    ["User: I feel nervous about my job interview tomorrow. Any advice?",
     "That's normal! Prepare two or three stories about your past work, research the company, "
     "and get a good night's sleep. Arriving ten minutes early also helps you feel calm.",
     "Just don't be nervous."],
]
