"""Times scikit-learn's random forest on the same problem as `train_forest`.

Same data (duplicates dropped), same derived BMI, one-hot + standard scaling,
stratified 70/30 split, 300 trees, depth 12, balanced class weights, on all
cores (n_jobs=-1). Run: python3 benches/sklearn_forest.py
Needs: pip install scikit-learn pandas
"""

import time

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import OneHotEncoder, StandardScaler

frame = pd.read_csv("data/raw/ObesityDataSet.csv").drop_duplicates()
frame["BMI"] = frame["Weight"] / frame["Height"] ** 2
target = frame.pop("NObeyesdad")
categorical = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
numeric = [c for c in frame.columns if c not in categorical]
train_x, test_x, train_y, test_y = train_test_split(
    frame, target, test_size=0.3, stratify=target, random_state=42
)
encode = ColumnTransformer(
    [("num", StandardScaler(), numeric), ("cat", OneHotEncoder(handle_unknown="ignore"), categorical)]
)
train_m = encode.fit_transform(train_x)
test_m = encode.transform(test_x)

fits = []
for seed in range(5):
    forest = RandomForestClassifier(
        n_estimators=300, max_depth=12, class_weight="balanced", n_jobs=-1, random_state=seed
    )
    started = time.perf_counter()
    forest.fit(train_m, train_y)
    fits.append(time.perf_counter() - started)
predicted = forest.predict(test_m)
fits.sort()
print(f"rows {train_m.shape[0]} x {train_m.shape[1]} features")
print(f"scikit-learn fit: median {fits[2] * 1000:.0f} ms, best {fits[0] * 1000:.0f} ms (5 fits)")
print(f"test accuracy {accuracy_score(test_y, predicted):.3f}, macro-F1 {f1_score(test_y, predicted, average='macro'):.3f}")
